-- Flow control: concurrency limits per queue and per concurrency key, and rate limits per
-- queue, enforced inside the claim. Additive only: the previous release's worker claims
-- without reading any of this (it ignores limits) and keeps working on this schema.

-- Running jobs per queue and key: what a limited claim counts. One entry per running job; a
-- claim of a queue without limits never reads it. `queue_name IS NOT NULL` (always true) keeps
-- it out of queries that name no queue: only a queue_name comparison implies it, so the
-- reconcile and rescue keep the indexes their tests pin.
-- jobqueue: concurrently
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_queue_running_idx
    ON jobs (queue_name, concurrency_key)
    WHERE status = 'running' AND queue_name IS NOT NULL;

-- Pending jobs by key, in claim order within each key: a key-limited claim walks the distinct
-- keys (one descent each) and takes the best few of every key with room, so a hot key's
-- backlog is never scanned. Jobs without a key pay nothing for it.
-- jobqueue: concurrently
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_key_claim_idx
    ON jobs (queue_name, concurrency_key, priority DESC, run_at, id)
    WHERE status = 'pending' AND concurrency_key IS NOT NULL;

-- A sliding window of recent starts per rate-limited queue: (claim time, jobs started) pairs
-- younger than the queue's period. Exact under concurrency because only a claim holding the
-- queue's limit lock reads or writes its row; it holds at most one pair per claim.
CREATE TABLE IF NOT EXISTS queue_rate_windows (
    queue_name   text PRIMARY KEY,
    start_times  timestamptz[] NOT NULL DEFAULT '{}',
    start_counts integer[]     NOT NULL DEFAULT '{}',
    CONSTRAINT queue_rate_windows_pairs CHECK (
        cardinality(start_times) = cardinality(start_counts))
);

-- The one write of a limited claim: the picked rows become running under the worker's lease,
-- stamped with the claim's time (taken after the queue's lock).
CREATE OR REPLACE FUNCTION jobqueue_start_claimed(
    p_ids bigint[], p_worker uuid, p_lease double precision, p_started timestamptz)
RETURNS SETOF jobs
LANGUAGE sql VOLATILE AS $$
    UPDATE jobs AS j
    SET status = 'running', attempts = j.attempts + 1, worker_id = p_worker,
        started_at = p_started, lease_expires_at = p_started + make_interval(secs => p_lease)
    WHERE j.id = ANY (p_ids)  -- primary-key lookups, never a scan
    RETURNING j.*
$$;

-- The claim for queues that have limits; claim_jobs (worker/db/sql/claims.sql) calls it with
-- the names of its limited queues and claims every other queue itself, as before.
--
-- Why a function: a limit is only exact if counting and claiming are atomic across workers.
-- A per-queue advisory lock serialises the limited claims of one queue, but a single SQL
-- statement keeps the snapshot it took before waiting for the lock and would not see the
-- claim committed just before it. In a VOLATILE function under READ COMMITTED every query
-- takes a fresh snapshot, so the counts read after the lock see every committed claim. The
-- lock is held to the end of the claim's transaction, i.e. until its claims are committed.
-- Queues are locked in name order, so claims over several limited queues never deadlock.
--
-- The batch ($2 slots) is shared among p_shares queues: each limited queue takes at most its
-- share of what is left (ceil(left / shares left)), so the first name never starves the
-- others; the caller counts its other queues in p_shares only when they have ready jobs.
CREATE OR REPLACE FUNCTION jobqueue_claim_limited(
    p_queues text[], p_budget integer, p_shares integer, p_worker uuid,
    p_lease double precision)
RETURNS SETOF jobs
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    q       queues;
    room    integer;
    got     integer;
    claimed integer;
    running integer;
    started timestamptz;
BEGIN
    FOR q IN SELECT * FROM queues WHERE name = ANY (p_queues) ORDER BY name LOOP
        EXIT WHEN p_budget <= 0;
        room := (p_budget + p_shares - 1) / greatest(p_shares, 1);
        p_shares := p_shares - 1;
        -- 0x6A716C6D: "jqlm", the limit locks' class; a hash collision only serialises more
        PERFORM pg_advisory_xact_lock(1785818221, hashtext(q.name));
        -- read after the lock: starts are stamped in lock order, which the window relies on
        started := clock_timestamp();
        IF q.concurrency_limit IS NOT NULL OR q.key_concurrency_limit IS NOT NULL THEN
            running := (SELECT count(*) FROM jobs j
                        WHERE j.status = 'running' AND j.queue_name = q.name);
            room := least(room, q.concurrency_limit - running);
        END IF;
        IF q.rate_limit_jobs IS NOT NULL THEN
            room := least(room, q.rate_limit_jobs - coalesce((
                SELECT sum(s.n) FROM queue_rate_windows w,
                    unnest(w.start_times, w.start_counts) AS s(t, n)
                WHERE w.queue_name = q.name
                  AND s.t > started - make_interval(secs => q.rate_limit_per_seconds)),
                0)::integer);
        END IF;
        CONTINUE WHEN room <= 0;

        -- No key can reach its limit in this claim when the limit exceeds all running jobs
        -- of the queue plus the room: then per-key counting is skipped (a limit that does not
        -- bind costs what a queue limit costs).
        IF q.key_concurrency_limit IS NULL OR q.key_concurrency_limit >= running + room THEN
            RETURN QUERY
            WITH picked AS (
                SELECT j.id FROM jobs j
                WHERE j.status = 'pending' AND j.queue_name = q.name AND j.run_at <= now()
                ORDER BY j.priority DESC, j.run_at, j.id
                LIMIT room
                FOR UPDATE SKIP LOCKED
            )
            SELECT * FROM jobqueue_start_claimed(
                ARRAY(SELECT id FROM picked), p_worker, p_lease, started);
            GET DIAGNOSTICS got = ROW_COUNT;
        ELSE
            -- Per key, first the common case: the head of the queue (twice the room, in
            -- claim order), each key admitted up to (limit - running). Locked only once
            -- picked, as window functions cannot lock; the claims of this queue are
            -- serialised, so a picked row is rarely gone, and then it is only skipped.
            RETURN QUERY
            WITH head AS (
                SELECT j.id, j.concurrency_key AS k, j.priority, j.run_at FROM jobs j
                WHERE j.status = 'pending' AND j.queue_name = q.name AND j.run_at <= now()
                ORDER BY j.priority DESC, j.run_at, j.id
                LIMIT 2 * room
            ),
            busy AS (
                SELECT j.concurrency_key AS k, count(*)::integer AS n FROM jobs j
                WHERE j.status = 'running' AND j.queue_name = q.name
                  AND j.concurrency_key IS NOT NULL
                GROUP BY j.concurrency_key
            ),
            ranked AS (
                SELECT h.id, h.k, h.priority, h.run_at, coalesce(busy.n, 0) AS n,
                       row_number() OVER (
                           PARTITION BY h.k ORDER BY h.priority DESC, h.run_at, h.id) AS nth
                FROM head AS h LEFT JOIN busy ON busy.k = h.k
            ),
            picked AS (
                SELECT id FROM ranked
                WHERE k IS NULL OR n + nth <= q.key_concurrency_limit
                ORDER BY priority DESC, run_at, id
                LIMIT room
            ),
            locked AS (
                SELECT j.id FROM jobs j
                WHERE j.id = ANY (ARRAY(SELECT id FROM picked)) AND j.status = 'pending'
                FOR UPDATE SKIP LOCKED
            )
            SELECT * FROM jobqueue_start_claimed(
                ARRAY(SELECT id FROM locked), p_worker, p_lease, started);
            GET DIAGNOSTICS claimed = ROW_COUNT;
            room := room - claimed;
            got := 0;
            IF room > 0 THEN
                -- Then behind keys at their limit: the distinct pending keys by a loose index
                -- scan (one descent each, never a hot key's backlog), at most (limit - running)
                -- of each key's best jobs, and jobs without a key; the best `room` of those.
                -- Running counts now include the rows just claimed (our own writes).
                RETURN QUERY
                WITH RECURSIVE keys(k) AS (
                    (SELECT j.concurrency_key FROM jobs j
                     WHERE j.status = 'pending' AND j.queue_name = q.name
                       AND j.concurrency_key IS NOT NULL
                     ORDER BY j.concurrency_key LIMIT 1)
                    UNION ALL
                    SELECT (SELECT j.concurrency_key FROM jobs j
                            WHERE j.status = 'pending' AND j.queue_name = q.name
                              AND j.concurrency_key IS NOT NULL AND j.concurrency_key > keys.k
                            ORDER BY j.concurrency_key LIMIT 1)
                    FROM keys WHERE keys.k IS NOT NULL
                ),
                busy AS (
                    SELECT j.concurrency_key AS k, count(*)::integer AS n FROM jobs j
                    WHERE j.status = 'running' AND j.queue_name = q.name
                      AND j.concurrency_key IS NOT NULL
                    GROUP BY j.concurrency_key
                ),
                candidates AS (
                    SELECT c.id, c.priority, c.run_at
                    FROM keys
                    LEFT JOIN busy ON busy.k = keys.k
                    CROSS JOIN LATERAL (
                        SELECT j.id, j.priority, j.run_at FROM jobs j
                        WHERE j.status = 'pending' AND j.queue_name = q.name
                          AND j.concurrency_key IS NOT NULL AND j.concurrency_key = keys.k
                          AND j.run_at <= now()
                        ORDER BY j.priority DESC, j.run_at, j.id
                        LIMIT least(
                            room, greatest(q.key_concurrency_limit - coalesce(busy.n, 0), 0))
                        FOR UPDATE SKIP LOCKED
                    ) AS c
                    WHERE keys.k IS NOT NULL
                    UNION ALL
                    SELECT u.id, u.priority, u.run_at FROM (
                        SELECT j.id, j.priority, j.run_at FROM jobs j
                        WHERE j.status = 'pending' AND j.queue_name = q.name
                          AND j.concurrency_key IS NULL AND j.run_at <= now()
                        ORDER BY j.priority DESC, j.run_at, j.id
                        LIMIT room
                        FOR UPDATE SKIP LOCKED
                    ) AS u
                ),
                picked AS (
                    SELECT id FROM candidates ORDER BY priority DESC, run_at, id LIMIT room
                )
                SELECT * FROM jobqueue_start_claimed(
                    ARRAY(SELECT id FROM picked), p_worker, p_lease, started);
                GET DIAGNOSTICS got = ROW_COUNT;
            END IF;
            got := got + claimed;
        END IF;
        p_budget := p_budget - got;

        IF q.rate_limit_jobs IS NOT NULL AND got > 0 THEN
            INSERT INTO queue_rate_windows AS w (queue_name, start_times, start_counts)
            VALUES (q.name, ARRAY[started], ARRAY[got])
            ON CONFLICT (queue_name) DO UPDATE
            SET (start_times, start_counts) = (
                SELECT coalesce(array_agg(s.t ORDER BY s.t), '{}'),
                       coalesce(array_agg(s.n ORDER BY s.t), '{}')
                FROM (SELECT * FROM unnest(w.start_times, w.start_counts) AS o(t, n)
                      WHERE o.t > started - make_interval(secs => q.rate_limit_per_seconds)
                      UNION ALL
                      SELECT started, got) AS s);
        END IF;
    END LOOP;
END $$;
