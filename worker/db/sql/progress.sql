-- Progress that handlers report (ctx.progress), written in batches by the worker's progress
-- writer, never by the claim or acknowledgement statements. Fenced like an acknowledgement:
-- only rows still running under this worker and attempt change.

-- name: jobs_update_progress
-- params: $1 ids, $2 worker_id, $3 by_token
-- by_token: a JSON object {"<id>:<attempts>": [fraction, message], ...}.
WITH reports AS MATERIALIZED (SELECT $3::text::jsonb AS by_token)
UPDATE jobs AS j
SET progress = (reports.by_token -> (j.id || ':' || j.attempts) ->> 0)::real,
    progress_message = reports.by_token -> (j.id || ':' || j.attempts) ->> 1
FROM reports
WHERE j.id = ANY (ARRAY(SELECT unnest($1::bigint[])))
  AND j.status::text = 'running' AND j.worker_id = $2
  AND reports.by_token ? (j.id || ':' || j.attempts);
