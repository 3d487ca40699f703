-- Storage layout 2: the ready ring (docs/storage.md, "Layout 2"). The claim stops reading
-- `jobs` to find work: it takes entries from `job_ready`, a small table split into 8 slots
-- (LIST partitions). New entries go into the current slot; a maintenance call turns the ring
-- every second, and a slot that no entry is left in is emptied with TRUNCATE, which needs no
-- vacuum. So while a long transaction pins the xmin horizon, the dead entries that claims leave
-- behind live only until their slot is truncated, seconds, and a claim's index scan never
-- steps over more than those: it does not slow with the number of jobs claimed while pinned.
--
-- `jobs` stays the truth. An entry only says "this job may be pending": the claim takes the
-- job only where its row still says pending (by primary key, fenced as before), then deletes
-- the entry. So an entry left behind (a job moved, or claimed by a worker of an older release
-- straight from `jobs`) is harmless: the next claim that picks it, or the turn, deletes it.
-- That is also why an older release's worker may keep claiming during a rolling upgrade:
-- layout 2 serves claims written for layout 1 (jobqueue_oldest_claim_layout() below), and no
-- job runs twice.
--
-- Entries are written by triggers on `jobs`, so every way into pending is covered: every
-- enqueue path (API, batch, client, jobqueue_enqueue(), the scheduler, workflows), retries,
-- releases, rescue, snoozes, bulk retry, and writes by an older release during the upgrade.
-- The trigger functions are SECURITY DEFINER, so a role that may insert into `jobs` (say, an
-- application that enqueues in its own transaction) needs no new grant.

CREATE SEQUENCE IF NOT EXISTS job_ready_slot;  -- the current slot is last_value % 8
-- called, so that the first nextval moves on from slot 1 (a fresh sequence returns its start)
SELECT setval('job_ready_slot', 1, true);
CREATE SEQUENCE IF NOT EXISTS job_ready_turned_at;  -- when it last turned, epoch milliseconds

CREATE TABLE IF NOT EXISTS job_ready (
    slot       smallint    NOT NULL,
    queue_name text        NOT NULL,
    priority   integer     NOT NULL,
    run_at     timestamptz NOT NULL,
    job_id     bigint      NOT NULL
) PARTITION BY LIST (slot);

DO $$
BEGIN
    FOR slot IN 0..7 LOOP
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS job_ready_%s PARTITION OF job_ready FOR VALUES IN (%s)',
            slot, slot);
    END LOOP;
END
$$;

-- The claim's one shape, on every slot: WHERE queue_name, ORDER BY, LIMIT.
CREATE INDEX IF NOT EXISTS job_ready_claim_idx
    ON job_ready (queue_name, priority DESC, run_at, job_id);

-- The slot new entries go to. A sequence is read without a row lock and turned in place (no
-- row version), so the hot path updates no row to follow the ring.
CREATE OR REPLACE FUNCTION jobqueue_ready_slot() RETURNS smallint
LANGUAGE sql STABLE AS $$ SELECT (last_value % 8)::smallint FROM job_ready_slot $$;

-- Inserted jobs: one statement-level trigger, so a batch of 10,000 costs one INSERT here.
CREATE OR REPLACE FUNCTION jobqueue_ready_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO job_ready (slot, queue_name, priority, run_at, job_id)
    SELECT jobqueue_ready_slot(), n.queue_name, n.priority, n.run_at, n.id
    FROM inserted AS n
    WHERE n.status = 'pending';
    RETURN NULL;
END
$$;

-- A job that becomes pending again (a retry, a release, a rescue, a snooze, a dependency
-- done) gets an entry; a pending job whose order changed gets a new one for the old; a pending
-- job that leaves without a claim (cancelled) loses its entry. The WHEN runs without calling
-- the function, so a claim (whose statement deletes the entry itself) or an acknowledgement
-- pays nothing more. Deleting an old entry looks it up by the whole claim key, on each slot.
CREATE OR REPLACE FUNCTION jobqueue_ready_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF OLD.status = 'pending' THEN
        DELETE FROM job_ready AS r
        WHERE r.queue_name = OLD.queue_name AND r.priority = OLD.priority
          AND r.run_at = OLD.run_at AND r.job_id = OLD.id;
    END IF;
    IF NEW.status = 'pending' THEN
        INSERT INTO job_ready (slot, queue_name, priority, run_at, job_id)
        VALUES (jobqueue_ready_slot(), NEW.queue_name, NEW.priority, NEW.run_at, NEW.id);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS jobs_ready_inserted ON jobs;
CREATE TRIGGER jobs_ready_inserted
    AFTER INSERT ON jobs REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION jobqueue_ready_inserted();

DROP TRIGGER IF EXISTS jobs_ready_updated ON jobs;
CREATE TRIGGER jobs_ready_updated
    AFTER UPDATE OF status, run_at, priority, queue_name ON jobs
    FOR EACH ROW
    WHEN ((NEW.status = 'pending'
           AND (OLD.status <> 'pending' OR OLD.run_at <> NEW.run_at
                OR OLD.priority <> NEW.priority OR OLD.queue_name <> NEW.queue_name))
          OR (OLD.status = 'pending' AND NEW.status NOT IN ('pending', 'running')))
    EXECUTE FUNCTION jobqueue_ready_updated();

-- The jobs pending when this migration runs (the triggers above already cover any written
-- after them, and a second entry for one job is harmless).
INSERT INTO job_ready (slot, queue_name, priority, run_at, job_id)
SELECT jobqueue_ready_slot(), j.queue_name, j.priority, j.run_at, j.id
FROM jobs AS j
WHERE j.status = 'pending';

-- The ring's maintenance, called by every worker every second (worker/runtime/ring.py); one
-- caller at a time does the work, the others return NULL at once. It
-- 1. turns the ring when the current slot has been current for p_every_ms (0: now);
-- 2. tidies the oldest slot that still holds entries, once it is half a ring old: drops the
--    stale entries among the first p_move (no pending job has their key), and when the slot
--    holds more dead entries than live ones (which is what a pin does), moves up to p_move of
--    the others (a backlog, a delayed job, a paused or limited queue) into the current slot,
--    so that the slot can be emptied in turn;
-- 3. truncates one slot (not the current one) that holds no entry: the oldest with anything
--    on disk. TRUNCATE takes an ACCESS EXCLUSIVE lock; every claim takes a weak lock on every
--    slot, and queues behind a waiting request, so the lock is waited for at most lock_timeout
--    (twice per call at most), and a slot held longer is tried again at the next call. It
--    truncates one slot per call, holding no ACCESS EXCLUSIVE lock while it waits for another.
-- Returns the slot truncated, or -1 when none was.
CREATE OR REPLACE FUNCTION jobqueue_ready_turn(p_every_ms integer, p_move integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET lock_timeout = '50ms' AS $$
DECLARE
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    current_slot integer;
    oldest integer;
    candidate integer;
    occupied boolean;
    waits integer := 0;
BEGIN
    -- it runs as the owner: only a role that may take entries itself may turn the ring (a
    -- read-only role may execute every function, and must not truncate through this one)
    IF NOT has_table_privilege(session_user, 'job_ready', 'DELETE') THEN
        RAISE EXCEPTION 'permission denied to turn the ready ring: % may not delete from job_ready',
                        session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_try_advisory_xact_lock(1785686386) THEN  -- "jq-r": one turner at a time
        RETURN NULL;
    END IF;
    IF now_ms - (SELECT last_value FROM job_ready_turned_at) >= p_every_ms THEN
        PERFORM nextval('job_ready_slot');
        PERFORM setval('job_ready_turned_at', now_ms);
    END IF;
    current_slot := jobqueue_ready_slot();

    -- the oldest slot with anything on disk, counting from the one after the current
    SELECT s INTO oldest
    FROM generate_series(1, 7) AS step, LATERAL (SELECT (current_slot + step) % 8 AS s) AS o
    WHERE pg_relation_size(format('job_ready_%s', s)::regclass) > 0
    ORDER BY step
    LIMIT 1;
    IF oldest IS NULL THEN
        RETURN -1;
    END IF;
    IF (oldest - current_slot + 8) % 8 <= 4 THEN  -- at least half a ring old
        BEGIN
            -- stale entries (no pending job has their key), among the first p_move examined:
            -- always, or a queue only other paths claim from (a limited one) would leave one
            -- entry behind for every job it ran
            DELETE FROM job_ready AS r
            WHERE r.slot = oldest
              AND r.ctid = ANY (ARRAY(
                  SELECT e.ctid
                  FROM (SELECT f.ctid, f.queue_name, f.priority, f.run_at, f.job_id
                        FROM job_ready AS f WHERE f.slot = oldest LIMIT p_move) AS e
                  WHERE NOT EXISTS (SELECT 1 FROM jobs AS j
                                    WHERE j.id = e.job_id AND j.status = 'pending'
                                      AND j.queue_name = e.queue_name
                                      AND j.priority = e.priority AND j.run_at = e.run_at)));
            -- the others move along only when the slot holds more dead entries than live
            -- ones (statistics, up to a second old), which is what a pin does: without one,
            -- vacuum keeps a slot lean, and a backlog is not carried round the ring for nothing
            IF pg_stat_get_dead_tuples(format('job_ready_%s', oldest)::regclass)
               > pg_stat_get_live_tuples(format('job_ready_%s', oldest)::regclass) THEN
                WITH taken AS (
                    DELETE FROM job_ready AS r
                    WHERE r.slot = oldest
                      AND r.ctid = ANY (ARRAY(SELECT e.ctid FROM job_ready AS e
                                              WHERE e.slot = oldest LIMIT p_move
                                              FOR UPDATE SKIP LOCKED))
                    RETURNING r.queue_name, r.priority, r.run_at, r.job_id
                )
                INSERT INTO job_ready (slot, queue_name, priority, run_at, job_id)
                SELECT current_slot, t.queue_name, t.priority, t.run_at, t.job_id
                FROM taken AS t
                WHERE EXISTS (SELECT 1 FROM jobs AS j
                              WHERE j.id = t.job_id AND j.status = 'pending'
                                AND j.queue_name = t.queue_name
                                AND j.priority = t.priority AND j.run_at = t.run_at);
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            NULL;  -- an entry is held (a claim, a cancel): the next call tries again
        END;
    END IF;

    FOR candidate IN
        SELECT s
        FROM generate_series(1, 7) AS step, LATERAL (SELECT (current_slot + step) % 8 AS s) AS o
        WHERE pg_relation_size(format('job_ready_%s', s)::regclass) > 0
        ORDER BY step
    LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM job_ready_%s)', candidate) INTO occupied;
        CONTINUE WHEN occupied;
        BEGIN
            EXECUTE format('LOCK TABLE job_ready_%s IN ACCESS EXCLUSIVE MODE', candidate);
        EXCEPTION WHEN lock_not_available THEN
            -- held (a claim in flight, a transaction that enqueued into it and works on):
            -- try the next slot, but queue claims behind a lock request twice at most
            waits := waits + 1;
            EXIT WHEN waits >= 2;
            CONTINUE;
        END;
        -- under the lock no entry can be on its way in; one written since the check stays
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM job_ready_%s)', candidate) INTO occupied;
        IF occupied THEN
            RETURN -1;
        END IF;
        EXECUTE format('TRUNCATE job_ready_%s', candidate);
        RETURN candidate;
    END LOOP;
    RETURN -1;
END
$$;

-- Layout 2, and the claims it serves: its own, and layout 1's (an older release's worker
-- claims straight from `jobs`, which is still the truth; the turn deletes the entries it
-- leaves). A later layout that moves the jobs raises jobqueue_oldest_claim_layout() in the
-- same transaction, and from then on older workers are refused (JQ002).
CREATE OR REPLACE FUNCTION jobqueue_storage_layout() RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT 2 $$;

CREATE OR REPLACE FUNCTION jobqueue_oldest_claim_layout() RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT 1 $$;

CREATE OR REPLACE FUNCTION jobqueue_layout_gate(p_known integer) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    current_layout integer := jobqueue_storage_layout();
BEGIN
    IF p_known IS NOT NULL
       AND (p_known > current_layout OR p_known < jobqueue_oldest_claim_layout()) THEN
        RAISE EXCEPTION 'the database has storage layout %, this worker knows layout %',
                        current_layout, p_known
            USING ERRCODE = 'JQ002',
                  HINT = CASE WHEN current_layout > p_known
                              THEN 'run the release that migrated the database'
                              ELSE 'run jobqueue migrate with this release' END;
    END IF;
    RETURN true;
END
$$;
