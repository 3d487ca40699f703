-- Each attempt's story: the error and traceback of a failed attempt (job_errors) and the lines
-- its handler logged (job_logs), both append-only (migration 0010). The runtime inserts them in
-- the transaction of the attempt's acknowledgement, just before it, and under the same fencing:
-- only attempts still running under this worker are recorded, and their rows stay locked until
-- the acknowledgement commits, so the two agree on which attempts were still this worker's.
-- Both statements start from the same `held`: the jobs of $1 still running under worker $2.

-- name: insert_job_errors
-- params: $1 ids, $2 worker_id, $3 errors
-- errors: a JSON array of [job id, attempt, error, traceback].
WITH held AS MATERIALIZED (
    SELECT j.id, j.attempts
    FROM jobs AS j
    WHERE j.id = ANY (ARRAY(SELECT unnest($1::bigint[])))  -- primary-key lookups
      AND j.status::text = 'running' AND j.worker_id = $2
    FOR UPDATE
),
input AS (
    SELECT (e ->> 0)::bigint AS job_id, (e ->> 1)::int AS attempt, e ->> 2 AS error,
           e ->> 3 AS traceback
    FROM jsonb_array_elements($3::text::jsonb) AS e
)
INSERT INTO job_errors (job_id, attempt, error, traceback)
SELECT i.job_id, i.attempt, i.error, i.traceback
FROM input AS i
JOIN held AS h ON h.id = i.job_id AND h.attempts = i.attempt;

-- name: insert_job_logs
-- params: $1 ids, $2 worker_id, $3 logs, $4 cap_bytes
-- logs: a JSON array of [job id, attempt, lines dropped already, lines], each line [unix
-- time, level, message]; cap_bytes: bytes of messages kept per job, over all its attempts. Lines past the cap are not kept; one line per attempt says how many went.
WITH held AS MATERIALIZED (
    SELECT j.id, j.attempts
    FROM jobs AS j
    WHERE j.id = ANY (ARRAY(SELECT unnest($1::bigint[])))  -- primary-key lookups
      AND j.status::text = 'running' AND j.worker_id = $2
    FOR UPDATE
),
input AS (
    SELECT (a ->> 0)::bigint AS job_id, (a ->> 1)::int AS attempt, (a ->> 2)::int AS dropped,
           to_timestamp((l.line ->> 0)::float8) AS at, l.line ->> 1 AS level,
           l.line ->> 2 AS message, l.n
    FROM jsonb_array_elements($3::text::jsonb) AS a
    CROSS JOIN LATERAL jsonb_array_elements(a -> 3) WITH ORDINALITY AS l(line, n)
),
sized AS (
    SELECT i.*,
           (SELECT coalesce(sum(octet_length(s.message)), 0) FROM job_logs AS s
            WHERE s.job_id = i.job_id)
           + sum(octet_length(i.message)) OVER (PARTITION BY i.job_id, i.attempt ORDER BY i.n)
           AS total
    FROM input AS i
    JOIN held AS h ON h.id = i.job_id AND h.attempts = i.attempt
),
kept AS (
    SELECT job_id, attempt, at, level, message, n FROM sized WHERE total <= $4
    UNION ALL
    SELECT job_id, attempt, max(at), 'WARNING',
           (count(*) FILTER (WHERE total > $4) + max(dropped))
           || ' more lines not kept: a job keeps at most ' || $4 || ' bytes of log lines',
           max(n) + 1
    FROM sized
    GROUP BY job_id, attempt
    HAVING count(*) FILTER (WHERE total > $4) + max(dropped) > 0
)
INSERT INTO job_logs (job_id, attempt, at, level, message)
SELECT job_id, attempt, at, level, message FROM kept ORDER BY job_id, attempt, n;

-- name: job_errors_of
-- params: $1 job_id
-- One job's failed attempts, newest first.
SELECT attempt, at, error, traceback
FROM job_errors
WHERE job_id = $1
ORDER BY attempt DESC, at DESC;

-- name: job_logs_of
-- params: $1 job_id
-- One job's log lines, in the order they were logged.
SELECT attempt, at, level, message
FROM job_logs
WHERE job_id = $1
ORDER BY id;

-- name: prune_attempt_history
-- params: $1 older_than_seconds, $2 batch
-- Retention: up to $2 rows of each table older than $1 seconds; returns how many went.
WITH errors AS (
    DELETE FROM job_errors
    WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM job_errors
        WHERE at < now() - make_interval(secs => $1)
        ORDER BY at
        LIMIT $2))
    RETURNING 1
),
logs AS (
    DELETE FROM job_logs
    WHERE id = ANY (ARRAY(
        SELECT id FROM job_logs
        WHERE at < now() - make_interval(secs => $1)
        ORDER BY at
        LIMIT $2))
    RETURNING 1
)
SELECT greatest((SELECT count(*) FROM errors), (SELECT count(*) FROM logs));
