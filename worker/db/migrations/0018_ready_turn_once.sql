-- The ready ring's turn (migration 0017) tidies a slot once a ring period, not once a call.
-- It dropped stale entries among the first p_move of the oldest occupied slot on every call
-- once that slot was half a ring old; a backlog of live entries in it (ten thousand jobs
-- waiting, an ordinary burst) was then examined again every second, a primary-key probe per
-- entry: up to ~0.4 s of the server's CPU each second while the backlog lasted, for nothing.
-- Now the slot half a ring old is tidied once per turn of the ring: each slot once per ring
-- period, eight seconds, which is also the rate docs/storage.md gives for moving waiting
-- entries along under a pin. `job_ready_tidied` remembers the turn whose slot was tidied, so
-- a call that could not (an entry held, 50 ms lock_timeout) leaves it to the next call, and
-- the others read nothing of the backlog. It is a sequence, changed in place, so a pinned
-- horizon leaves no dead row behind it either.
-- The function keeps its name and arguments, so an older release's ring service calls it
-- as before.

CREATE SEQUENCE IF NOT EXISTS job_ready_tidied MINVALUE 0 START 0;  -- job_ready_slot's value

CREATE OR REPLACE FUNCTION jobqueue_ready_turn(p_every_ms integer, p_move integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET lock_timeout = '50ms' AS $$
DECLARE
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    current_slot integer;
    aged integer;  -- the slot half a ring old
    candidate integer;
    occupied boolean;
    waits integer := 0;
    turn_no bigint;
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
    turn_no := (SELECT last_value FROM job_ready_slot);

    -- the slot half a ring old, once per turn (so each slot once per ring period); an empty
    -- one needs nothing, and one whose tidy gave way to a held entry is tried by the next call
    aged := (current_slot + 4) % 8;
    IF (SELECT last_value FROM job_ready_tidied) <> turn_no THEN
        IF pg_relation_size(format('job_ready_%s', aged)::regclass) = 0 THEN
            PERFORM setval('job_ready_tidied', turn_no);
        ELSE
            BEGIN
                -- stale entries (no pending job has their key), among the first p_move examined:
                -- always, or a queue only other paths claim from (a limited one) would leave one
                -- entry behind for every job it ran
                DELETE FROM job_ready AS r
                WHERE r.slot = aged
                  AND r.ctid = ANY (ARRAY(
                      SELECT e.ctid
                      FROM (SELECT f.ctid, f.queue_name, f.priority, f.run_at, f.job_id
                            FROM job_ready AS f WHERE f.slot = aged LIMIT p_move) AS e
                      WHERE NOT EXISTS (SELECT 1 FROM jobs AS j
                                        WHERE j.id = e.job_id AND j.status = 'pending'
                                          AND j.queue_name = e.queue_name
                                          AND j.priority = e.priority AND j.run_at = e.run_at)));
                -- the others move along only when the slot holds more dead entries than live
                -- ones (statistics, up to a second old), which is what a pin does: without one,
                -- vacuum keeps a slot lean, and a backlog is not carried round the ring for
                -- nothing
                IF pg_stat_get_dead_tuples(format('job_ready_%s', aged)::regclass)
                   > pg_stat_get_live_tuples(format('job_ready_%s', aged)::regclass) THEN
                    WITH taken AS (
                        DELETE FROM job_ready AS r
                        WHERE r.slot = aged
                          AND r.ctid = ANY (ARRAY(SELECT e.ctid FROM job_ready AS e
                                                  WHERE e.slot = aged LIMIT p_move
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
                PERFORM setval('job_ready_tidied', turn_no);
            EXCEPTION WHEN lock_not_available THEN
                NULL;  -- an entry is held (a claim, a cancel): the next call tries again
            END;
        END IF;
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
