-- Flow control's settings and its live view: a queue's concurrency, key and rate limits, and
-- what runs and waits under them. The claim that enforces them is jobqueue_claim_limited
-- (migration 0006), which claim_jobs calls.

-- name: queues_set_limits
-- params: $1 queue_name, $2 set_concurrency, $3 concurrency, $4 set_key_concurrency,
--         $5 key_concurrency, $6 set_rate, $7 rate_jobs, $8 rate_seconds
-- $1 queue; $2/$4/$6 say whether to change the concurrency limit ($3), the key limit ($5)
-- and the rate ($7 jobs per $8 seconds); a change to NULL clears it. A never-seen name gets
-- its row. The row answers in the shape queues_flow reads.
INSERT INTO queues AS q (name, concurrency_limit, key_concurrency_limit, rate_limit_jobs,
                         rate_limit_per_seconds)
VALUES ($1, $3, $5, $7, $8)
ON CONFLICT (name) DO UPDATE SET
    concurrency_limit = CASE WHEN $2 THEN EXCLUDED.concurrency_limit
                             ELSE q.concurrency_limit END,
    key_concurrency_limit = CASE WHEN $4 THEN EXCLUDED.key_concurrency_limit
                                 ELSE q.key_concurrency_limit END,
    rate_limit_jobs = CASE WHEN $6 THEN EXCLUDED.rate_limit_jobs ELSE q.rate_limit_jobs END,
    rate_limit_per_seconds = CASE WHEN $6 THEN EXCLUDED.rate_limit_per_seconds
                                  ELSE q.rate_limit_per_seconds END,
    updated_at = now()
RETURNING name;

-- name: queues_flow
-- params: $1 queue_names, $2 bound
-- $1 queue names (NULL: every queue with a row), $2 count bound. For each: its limits, the
-- jobs running, the starts in the rate window, and the ready jobs a claim could not take now
-- ("blocked"): all of them while the queue is at its concurrency or rate limit, else those
-- whose key is at its key limit. Counts stop at $2, through the partial indexes.
SELECT q.name, q.paused, q.concurrency_limit, q.key_concurrency_limit, q.rate_limit_jobs,
       q.rate_limit_per_seconds, r.running, w.recent_starts, b.blocked
FROM queues AS q
CROSS JOIN LATERAL (
    SELECT count(*)::int AS running FROM jobs AS j
    WHERE j.status = 'running' AND j.queue_name = q.name
) AS r
CROSS JOIN LATERAL (
    SELECT coalesce(sum(s.n), 0)::int AS recent_starts
    FROM queue_rate_windows AS rw, unnest(rw.start_times, rw.start_counts) AS s(t, n)
    WHERE rw.queue_name = q.name AND q.rate_limit_per_seconds IS NOT NULL
      AND s.t > clock_timestamp() - make_interval(secs => q.rate_limit_per_seconds)
) AS w
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN r.running >= q.concurrency_limit OR w.recent_starts >= q.rate_limit_jobs THEN (
            SELECT count(*) FROM (
                SELECT 1 FROM jobs AS j
                WHERE j.status = 'pending' AND j.queue_name = q.name AND j.run_at <= now()
                LIMIT $2) AS x)
        ELSE (
            -- only the keys at their limit, each counted through jobs_key_claim_idx
            SELECT least(coalesce(sum(p.n), 0), $2) FROM (
                SELECT j.concurrency_key AS k FROM jobs AS j
                WHERE j.status = 'running' AND j.queue_name = q.name
                  AND j.concurrency_key IS NOT NULL
                GROUP BY j.concurrency_key
                HAVING count(*) >= q.key_concurrency_limit) AS full_keys
            CROSS JOIN LATERAL (
                SELECT count(*) AS n FROM (
                    SELECT 1 FROM jobs AS j
                    WHERE j.status = 'pending' AND j.queue_name = q.name
                      AND j.concurrency_key IS NOT NULL AND j.concurrency_key = full_keys.k
                      AND j.run_at <= now()
                    LIMIT $2) AS x) AS p)
    END::int AS blocked
) AS b
WHERE $1::text[] IS NULL OR q.name = ANY ($1::text[])
ORDER BY q.name;
