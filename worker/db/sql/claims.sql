-- The worker's hot path: claim, acknowledge, release, reconcile (registration is in workers.sql).
-- Fencing: a write touches a job only while it is still running under the same worker_id and
-- attempts (every claim increments attempts), so a stale worker's write changes nothing.
--
-- Acknowledgements must cost O(batch) whatever the planner believes, since a queue's statistics
-- are always stale (the running set churns faster than ANALYZE):
-- - rows are found by primary key: `id = ANY (ARRAY(SELECT ...))` hides the batch size from the
--   planner, which then never prefers a sequential scan;
-- - status is compared as text, so the running-jobs partial index is never scanned instead;
-- - per-job values come from one JSON object keyed by fencing token ("<id>:<attempts>"), not
--   from a join whose method the planner would choose from those stale estimates (a nested
--   loop is O(batch^2)); a row whose token is not a key was claimed again since: it is left.

-- name: claim_jobs
-- params: $1 queues, $2 batch_size, $3 worker_id, $4 lease_seconds, $5 lock_key
-- Rows come back in claim order. $1 queues, $2 batch size, $3 worker id, $4 lease seconds,
-- $5 the worker's liveness lock key (NULL: none). While that lock is not held the claim is
-- refused with JQ001 (jobqueue_liveness_gate, migration 0014): a worker whose jobs a rescuer
-- may take claims nothing. It is one uncorrelated subquery, so it runs once, before any row.
-- So is the layout gate (migration 0015): this statement was written for storage layout 2 (the
-- ready ring, migration 0017), and a database whose layout does not serve it refuses it with
-- JQ002 (docs/upgrading.md).
-- The payload comes as JSON text, which the worker decodes faster than a per-value codec.
--
-- Where the work is found (docs/storage.md): not in `jobs`, whose pending index fills with
-- the dead versions of claimed rows while a long transaction pins the horizon, but in the
-- ready ring `job_ready`, whose slots are emptied by TRUNCATE. One index scan per queue over
-- the ring's slots, then the best $2 overall; their jobs are claimed by primary key where the
-- row still says pending, and the entries of the jobs claimed are deleted, with any stale
-- ones picked (the job moved, or was claimed by an older release straight from `jobs`).
--
-- Flow control: a queue with a concurrency, key or rate limit (a `queues` row with one set)
-- is claimed by jobqueue_claim_limited (migration 0006), which counts and claims under the
-- queue's lock. Limited queues go first, each up to its share of the batch (split among all
-- the queues when the others have ready jobs, else among the limited ones), and the rest of
-- the batch goes to the other queues. A queue without a row costs one primary-key probe of
-- `queues` and nothing else: the function is not even called when none of $1 is limited.
-- `limited` tells the worker that the job's end frees room under a limit, worth a new claim.
-- `served` is the one place that reads `queues`: a filter on the row (say, a paused queue)
-- belongs there, and then holds for both paths.
--
-- One plan: the queues and the batch size are read through scalar subqueries, `(SELECT $1)`,
-- so no plan is made for their values. Otherwise, once ANALYZE had seen a backlog in the ring,
-- a plan for the call's own values looked cheaper than the generic one, and the server planned
-- this statement anew on every call: about 1 ms of its CPU, where a claim of 3 jobs runs in
-- 0.3 ms. Now it keeps one generic plan after five runs; the plan is the same either way.
WITH served AS MATERIALIZED (
    SELECT q.queue_name,
           (s.concurrency_limit IS NOT NULL OR s.key_concurrency_limit IS NOT NULL
            OR s.rate_limit_jobs IS NOT NULL) IS TRUE AS limited
    FROM (SELECT DISTINCT unnest((SELECT $1::text[]))) AS q(queue_name)
    LEFT JOIN queues AS s ON s.name = q.queue_name
    -- a paused queue is claimed from by neither path; running jobs finish (scheduling)
    WHERE s.paused IS NOT TRUE AND (SELECT jobqueue_liveness_gate($5::integer))
      AND (SELECT jobqueue_layout_gate(2))
),
limited AS MATERIALIZED (
    SELECT l.*
    FROM (SELECT ARRAY(SELECT queue_name FROM served WHERE limited) AS names) AS a
    CROSS JOIN LATERAL jobqueue_claim_limited(
        a.names,
        $2,
        -- shares: the limited queues, plus the others that have a ready entry (one probe each)
        cardinality(a.names) + (
            SELECT count(*) FROM served AS o
            CROSS JOIN LATERAL (
                SELECT 1 FROM job_ready AS r
                WHERE r.queue_name = o.queue_name AND r.run_at <= now()
                ORDER BY r.priority DESC, r.run_at, r.job_id  -- so job_ready_claim_idx serves it
                LIMIT 1) AS ready
            WHERE NOT o.limited)::integer,
        $3,
        $4) AS l
    WHERE cardinality(a.names) > 0
),
picked AS MATERIALIZED (
    SELECT c.slot, c.entry, c.job_id, c.priority, c.run_at
    FROM served AS q
    CROSS JOIN LATERAL (
        SELECT r.slot, r.ctid AS entry, r.job_id, r.priority, r.run_at
        FROM job_ready AS r
        WHERE r.queue_name = q.queue_name AND r.run_at <= now()
        ORDER BY r.priority DESC, r.run_at, r.job_id  -- so job_ready_claim_idx serves it
        LIMIT (SELECT $2::integer)
        FOR UPDATE SKIP LOCKED
    ) AS c
    WHERE NOT q.limited
    ORDER BY c.priority DESC, c.run_at, c.job_id
    LIMIT (SELECT $2::integer) - (SELECT count(*) FROM limited)
),
-- The jobs, locked by primary key, skipping any that another transaction holds (an
-- application enqueuing a dependent in its own transaction, a cancel): as layout 1 did, a
-- claim never waits on a job's row, and so never deadlocks with a cancel, which locks the row
-- before its trigger deletes the entry.
locked AS MATERIALIZED (
    SELECT j.id
    FROM jobs AS j
    WHERE j.id = ANY (ARRAY(SELECT DISTINCT job_id FROM picked))  -- by primary key, never a scan
      -- the row is the truth: still pending, due, and in a queue this path serves
      AND j.status::text = 'pending' AND j.run_at <= now()
      AND j.queue_name = ANY (ARRAY(SELECT queue_name FROM served WHERE NOT limited))
    FOR NO KEY UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE jobs AS j
    SET status = 'running', attempts = j.attempts + 1, worker_id = $3, started_at = now(),
        lease_expires_at = now() + make_interval(secs => $4)
    WHERE j.id = ANY (ARRAY(SELECT id FROM locked))
    RETURNING j.id, j.job_type, j.payload, j.queue_name, j.attempts, j.max_tries,
              j.timeout_seconds, j.priority, j.run_at, false AS limited, j.traceparent
),
-- The entries picked go if their job was claimed, or if they are stale (no pending job has
-- their key: it was cancelled, re-keyed, or claimed by another path). An entry whose job was
-- skipped because another transaction held it stays for the next claim. Each entry is named by
-- its (slot, address) pair, since addresses restart in every truncated slot; the pairs and the
-- ids claimed are looked up in JSON objects, so the check costs O(batch), not O(batch^2). The
-- TID scan runs on each slot; a slot without those pages (a truncated one) costs nothing.
gone AS MATERIALIZED (
    SELECT (SELECT jsonb_object_agg(slot || ':' || entry::text, true) FROM picked) AS pairs,
           coalesce((SELECT jsonb_object_agg(id::text, true) FROM claimed), '{}') AS claimed
),
taken AS (
    DELETE FROM job_ready AS r
    USING gone
    WHERE r.ctid = ANY (ARRAY(SELECT entry FROM picked))
      AND gone.pairs ? (r.slot || ':' || r.ctid::text)
      AND (gone.claimed ? r.job_id::text
           OR NOT EXISTS (SELECT 1 FROM jobs AS j
                          WHERE j.id = r.job_id AND j.status::text = 'pending'
                            AND j.queue_name = r.queue_name AND j.priority = r.priority
                            AND j.run_at = r.run_at))
),
everything AS (
    SELECT * FROM claimed
    UNION ALL
    SELECT id, job_type, payload, queue_name, attempts, max_tries, timeout_seconds, priority,
           run_at, true, traceparent
    FROM limited
)
SELECT id, job_type, payload::text, queue_name, attempts, max_tries, timeout_seconds, limited,
       traceparent  -- NULL unless the enqueue was traced: one NULL per row otherwise
FROM everything
ORDER BY priority DESC, run_at, id;

-- name: complete_jobs
-- params: $1 ids, $2 worker_id, $3 by_token
-- by_token: a JSON object {"<id>:<attempts>": result, ...}. The WHERE, the same in fail_jobs
-- and release_jobs: the rows of $1 still running under this worker on the attempt it
-- acknowledges (their fencing token is a key of acks.by_token).
-- Jobs with dependents, waiters or a tracked batch are handed to jobqueue_jobs_finished
-- (migration 0007) in this same statement; for others that costs one flag read per row.
WITH acks AS MATERIALIZED (SELECT $3::text::jsonb AS by_token),
done AS (
    UPDATE jobs AS j
    SET status = 'completed', result = acks.by_token -> (j.id || ':' || j.attempts),
        finished_at = now(), lease_expires_at = NULL
    FROM acks
    WHERE j.id = ANY (ARRAY(SELECT unnest($1::bigint[])))
      AND j.status::text = 'running' AND j.worker_id = $2
      AND acks.by_token ? (j.id || ':' || j.attempts)
    RETURNING j.id, (j.has_dependents OR j.has_waiters OR j.batch_id IS NOT NULL) AS follow
)
SELECT count(*) AS written,
       CASE WHEN bool_or(follow)
            THEN jobqueue_jobs_finished(array_agg(id) FILTER (WHERE follow)) END AS followed
FROM done;

-- name: fail_jobs
-- params: $1 ids, $2 worker_id, $3 by_token
-- by_token: a JSON object {"<id>:<attempts>": [error, retry delay], ...}.
-- A delay sends the job back to pending at now() + delay with its error kept; null fails it.
-- Final failures follow up as in complete_jobs.
WITH acks AS MATERIALIZED (SELECT $3::text::jsonb AS by_token),
done AS (
    UPDATE jobs AS j
    SET status = CASE WHEN acks.by_token -> (j.id || ':' || j.attempts) ->> 1 IS NULL
                      THEN 'failed' ELSE 'pending' END::job_status,
        run_at = coalesce(
            now() + make_interval(
                secs => (acks.by_token -> (j.id || ':' || j.attempts) ->> 1)::float8),
            j.run_at),
        finished_at = CASE WHEN acks.by_token -> (j.id || ':' || j.attempts) ->> 1 IS NULL
                           THEN now() END,
        worker_id = CASE WHEN acks.by_token -> (j.id || ':' || j.attempts) ->> 1 IS NULL
                         THEN j.worker_id END,
        last_error = acks.by_token -> (j.id || ':' || j.attempts) ->> 0,
        lease_expires_at = NULL
    FROM acks
    WHERE j.id = ANY (ARRAY(SELECT unnest($1::bigint[])))
      AND j.status::text = 'running' AND j.worker_id = $2
      AND acks.by_token ? (j.id || ':' || j.attempts)
    RETURNING j.id, j.status::text = 'failed'
                    AND (j.has_dependents OR j.has_waiters OR j.batch_id IS NOT NULL) AS follow
)
SELECT count(*) AS written,
       CASE WHEN bool_or(follow)
            THEN jobqueue_jobs_finished(array_agg(id) FILTER (WHERE follow)) END AS followed
FROM done;

-- name: release_jobs
-- params: $1 ids, $2 worker_id, $3 by_token
-- Claimed jobs whose handler never started go back without using up a try.
-- by_token: a JSON object {"<id>:<attempts>": true, ...}.
WITH acks AS MATERIALIZED (SELECT $3::text::jsonb AS by_token),
released AS (
    UPDATE jobs AS j
    SET status = 'pending', attempts = j.attempts - 1, worker_id = NULL, started_at = NULL,
        lease_expires_at = NULL
    FROM acks
    WHERE j.id = ANY (ARRAY(SELECT unnest($1::bigint[])))
      AND j.status::text = 'running' AND j.worker_id = $2
      AND acks.by_token ? (j.id || ':' || j.attempts)
    RETURNING j.queue_name
)
SELECT count(*) AS released,
       (SELECT count(pg_notify('jobqueue_new_job', queue_name))
        FROM (SELECT DISTINCT queue_name FROM released) AS q) AS notified
FROM released;

-- name: release_unknown_jobs
-- params: $1 worker_id, $2 known_ids
-- Reconcile: jobs running under this worker that its runtime does not hold ($2: every job it
-- holds) were claimed by a reply it never received (a lost reply, a connection that broke or
-- was released in error); they never started, so they go back untouched.
-- jobs_worker_running_idx serves it: the cost is bounded by this worker's own rows.
WITH released AS (
    UPDATE jobs AS j
    SET status = 'pending', attempts = j.attempts - 1, worker_id = NULL, started_at = NULL,
        lease_expires_at = NULL
    WHERE j.status = 'running' AND j.worker_id = $1 AND NOT (j.id = ANY ($2::bigint[]))
    RETURNING j.queue_name
)
SELECT count(*) AS released,
       (SELECT count(pg_notify('jobqueue_new_job', queue_name))
        FROM (SELECT DISTINCT queue_name FROM released) AS q) AS notified
FROM released;

-- name: still_running
-- params: $1 worker_id, $2 ids, $3 by_token
-- Which of the jobs this worker runs ($2 ids, $3 a JSON object {"<id>:<attempts>": true, ...})
-- are still running under its lease; the others were cancelled, rescued or pruned.
WITH mine AS MATERIALIZED (SELECT $3::text::jsonb AS by_token)
SELECT j.id
FROM jobs AS j, mine
WHERE j.id = ANY (ARRAY(SELECT unnest($2::bigint[])))
  AND j.status::text = 'running' AND j.worker_id = $1
  AND mine.by_token ? (j.id || ':' || j.attempts);
