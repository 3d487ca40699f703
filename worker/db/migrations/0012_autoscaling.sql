-- Autoscaling additions. Additive only: the previous release never reads these objects and
-- keeps working on this schema.

-- Each worker's start, phase by phase (seconds since the epoch, as the worker's host saw them),
-- written once after its first claim, so the controller can time a cold start from the burst
-- to the first claim. NULL for workers that never claimed, and for the previous release's.
ALTER TABLE workers ADD COLUMN IF NOT EXISTS startup jsonb;

-- The demand the controller scales on, for other autoscalers (KEDA's postgresql scaler, a
-- dashboard): per queue, the ready jobs (pending and due; none while the queue is paused) and
-- the running jobs, each counted up to `cap` through the claim's and the running jobs' partial
-- indexes. With no queue names: every queue the database knows of (configured in `queues`,
-- or holding pending or running jobs), found by one index descent per queue, so an empty
-- queue reports zeros instead of vanishing.
CREATE OR REPLACE FUNCTION jobqueue_queue_demand(
    queue_names text[] DEFAULT NULL, cap integer DEFAULT 100000
) RETURNS TABLE (queue_name text, ready bigint, running bigint, paused boolean)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE pending_names(name, n) AS (
        (SELECT j.queue_name, 1 FROM jobs AS j
         WHERE queue_names IS NULL AND j.status = 'pending'
         ORDER BY j.queue_name LIMIT 1)
        UNION ALL
        SELECT nxt.queue_name, p.n + 1
        FROM pending_names AS p
        CROSS JOIN LATERAL (
            SELECT j.queue_name FROM jobs AS j
            WHERE j.status = 'pending' AND j.queue_name > p.name
            ORDER BY j.queue_name LIMIT 1) AS nxt
        WHERE p.n < 10000
    ),
    names AS (
        SELECT unnest(queue_names) AS name
        UNION
        SELECT q.name FROM queues AS q WHERE queue_names IS NULL
        UNION
        SELECT name FROM pending_names
        UNION
        SELECT DISTINCT j.queue_name FROM jobs AS j
        WHERE queue_names IS NULL AND j.status = 'running' AND j.queue_name IS NOT NULL
    )
    SELECT n.name,
           CASE WHEN coalesce(q.paused, false) THEN 0 ELSE
               (SELECT count(*) FROM (
                    SELECT 1 FROM jobs AS j
                    WHERE j.status = 'pending' AND j.queue_name = n.name AND j.run_at <= now()
                    LIMIT cap) AS r)
           END,
           (SELECT count(*) FROM (
                SELECT 1 FROM jobs AS j
                WHERE j.status = 'running' AND j.queue_name = n.name
                LIMIT cap) AS r),
           coalesce(q.paused, false)
    FROM names AS n
    LEFT JOIN queues AS q ON q.name = n.name
    WHERE n.name IS NOT NULL
    ORDER BY n.name
$$;

-- The same demand as one number over several queues: what a KEDA ScaledObject's postgresql
-- trigger queries (`SELECT jobqueue_demand(ARRAY['default'])`, target = jobs per replica).
CREATE OR REPLACE FUNCTION jobqueue_demand(queue_names text[], cap integer DEFAULT 100000)
RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(d.ready + d.running), 0)::bigint
    FROM jobqueue_queue_demand(queue_names, cap) AS d
$$;
