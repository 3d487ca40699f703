-- Snoozed jobs go back to pending at now() + their delay without using up a try: attempts, which
-- the claim incremented, is taken back, and snoozes counts up. Fenced like every ack.

-- name: snooze_jobs
-- params: $1 ids, $2 worker_id, $3 by_token, $4 max_snoozes
-- by_token: a JSON object {"<id>:<attempts>": delay seconds, ...}. A job that has already
-- snoozed max_snoozes times fails instead, with an error naming the setting.
WITH acks AS MATERIALIZED (SELECT $3::text::jsonb AS by_token)
UPDATE jobs AS j
SET status = CASE WHEN j.snoozes >= $4 THEN 'failed' ELSE 'pending' END::job_status,
    attempts = CASE WHEN j.snoozes >= $4 THEN j.attempts ELSE j.attempts - 1 END,
    snoozes = j.snoozes + CASE WHEN j.snoozes >= $4 THEN 0 ELSE 1 END,
    run_at = CASE WHEN j.snoozes >= $4 THEN j.run_at
                  ELSE now() + make_interval(
                      secs => (acks.by_token ->> (j.id || ':' || j.attempts))::float8) END,
    finished_at = CASE WHEN j.snoozes >= $4 THEN now() END,
    worker_id = CASE WHEN j.snoozes >= $4 THEN j.worker_id END,
    started_at = CASE WHEN j.snoozes >= $4 THEN j.started_at END,
    last_error = CASE WHEN j.snoozes >= $4
                      THEN 'snoozed ' || j.snoozes || ' times, the most JOBQUEUE_MAX_SNOOZES allows'
                      ELSE j.last_error END,
    lease_expires_at = NULL
FROM acks
WHERE j.id = ANY (ARRAY(SELECT unnest($1::bigint[])))
  AND j.status::text = 'running' AND j.worker_id = $2
  AND acks.by_token ? (j.id || ':' || j.attempts);
