-- Rescue at the speed of death (docs/reliability.md, "Liveness"): each worker's LISTEN
-- connection holds a session-level advisory lock, keyed by its `workers.lock_key`, for the
-- process's life. The server frees it the moment the process dies (its socket closes, its
-- backend ends), so a rescuer that can take the lock knows the worker is gone, without waiting
-- for its lease. Additive only: the previous release leaves `lock_key` NULL and its workers
-- are rescued by the lease rule alone, as before.
ALTER TABLE workers ADD COLUMN IF NOT EXISTS lock_key integer;

-- Keys come from a sequence, so two live workers never share one. It wraps around after 2^31
-- registrations; by then the worker that had a key is long gone.
CREATE SEQUENCE IF NOT EXISTS workers_lock_key_seq AS integer CYCLE;

-- The liveness locks' class: the first half of the two-integer advisory lock key, so that
-- they never meet the single-bigint keys of the sweeps and the migrator, nor the flow
-- locks' class (0006).
CREATE OR REPLACE FUNCTION jobqueue_liveness_class() RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 1785684588 $$;  -- 0x6A6F626C, "jobl"

-- The worker's LISTEN connection takes its lock, shared: after a reconnect the new session
-- takes it while the server may still keep the old one's backend alive, and shared holders
-- never wait for each other. It waits while a rescuer holds the lock (for one transaction).
CREATE OR REPLACE FUNCTION jobqueue_liveness_hold(p_lock_key integer) RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_lock_shared(jobqueue_liveness_class(), p_lock_key) $$;

-- A rescuer's test, in its own transaction: true when nobody holds the worker's lock. It
-- then holds the lock itself, exclusively, until it commits: the worker cannot take it back
-- and its claims are refused (jobqueue_liveness_gate) while its jobs are being rescued.
CREATE OR REPLACE FUNCTION jobqueue_liveness_free(p_lock_key integer) RETURNS boolean
LANGUAGE sql AS $$ SELECT pg_try_advisory_xact_lock(jobqueue_liveness_class(), p_lock_key) $$;

-- The claim's gate: a worker claims only while its lock is held (by its LISTEN connection,
-- or by a stale backend of it that the server still keeps), so a rescuer never takes jobs
-- from a worker that is still claiming. The claim then holds the lock too, shared, until it
-- commits: no rescue of this worker starts before the claimed rows are visible to it. Raises
-- JQ001 when the lock is free (the worker's session is gone, whatever its client believes) or
-- a rescuer holds it. NULL (no liveness lock: a test, a tool) passes.
CREATE OR REPLACE FUNCTION jobqueue_liveness_gate(p_lock_key integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_lock_key IS NULL THEN
        RETURN true;
    END IF;
    -- an exclusive lock is granted only when nobody holds it (released as the error aborts)
    IF pg_try_advisory_xact_lock(jobqueue_liveness_class(), p_lock_key) THEN
        RAISE EXCEPTION 'worker liveness lock % is not held', p_lock_key
            USING ERRCODE = 'JQ001',
                  HINT = 'the worker''s LISTEN connection is gone; it reconnects first';
    END IF;
    -- a shared lock is refused only while a rescuer holds it exclusively
    IF NOT pg_try_advisory_xact_lock_shared(jobqueue_liveness_class(), p_lock_key) THEN
        RAISE EXCEPTION 'worker liveness lock % is held by a rescuer', p_lock_key
            USING ERRCODE = 'JQ001',
                  HINT = 'this worker''s jobs are being rescued; it reconnects first';
    END IF;
    RETURN true;
END
$$;
