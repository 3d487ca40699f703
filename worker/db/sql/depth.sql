-- The autoscaler's depth probe and its view of workers. Each count is capped ($2), so the
-- probe costs the same with ten jobs or ten million waiting.

-- name: count_jobs_depth
-- params: $1 queues, $2 cap
-- $1 queues, $2 cap. Ready jobs through the claim's partial index (jobs_claim_idx), running
-- jobs through jobs_running_idx, both LIMITed. The oldest ready job is found by a loose index
-- scan: one descent per (queue, priority level), at most 64 levels per queue.
WITH RECURSIVE levels(queue_name, priority, n) AS (
    SELECT q.queue_name,
           (SELECT max(j.priority) FROM jobs j
            WHERE j.status = 'pending' AND j.queue_name = q.queue_name),
           1
    FROM unnest($1::text[]) AS q(queue_name)
    UNION ALL
    SELECT l.queue_name,
           (SELECT max(j.priority) FROM jobs j
            WHERE j.status = 'pending' AND j.queue_name = l.queue_name AND j.priority < l.priority),
           l.n + 1
    FROM levels l
    WHERE l.priority IS NOT NULL AND l.n < 64
)
SELECT
    (SELECT count(*) FROM (
        SELECT 1 FROM jobs j
        WHERE j.status = 'pending' AND j.queue_name = ANY ($1::text[]) AND j.run_at <= now()
        LIMIT $2) AS ready_jobs)::int AS ready,
    (SELECT count(*) FROM (
        SELECT 1 FROM jobs j
        WHERE j.status = 'running' AND j.queue_name = ANY ($1::text[])
        LIMIT $2) AS running_jobs)::int AS running,
    (SELECT extract(epoch FROM now() - min(first_ready.run_at))::float8
     FROM levels l
     CROSS JOIN LATERAL (
         SELECT j.run_at FROM jobs j
         WHERE j.status = 'pending' AND j.queue_name = l.queue_name
               AND j.priority = l.priority AND j.run_at <= now()
         ORDER BY j.run_at
         LIMIT 1) AS first_ready
     WHERE l.priority IS NOT NULL) AS oldest_ready_seconds;

-- name: sum_workers_in_flight
-- params: $1 worker_names
-- $1 pod names. Workers whose lease is still fresh, summed per name (a pod runs one worker,
-- but a restarted container briefly leaves its predecessor's row behind).
SELECT name, sum(in_flight)::int AS in_flight
FROM workers
WHERE name = ANY ($1::text[]) AND lease_expires_at > now()
GROUP BY name;
