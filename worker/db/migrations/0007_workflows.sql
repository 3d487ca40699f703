-- Workflows: dependencies between jobs, batches with a completion callback, waiting for a
-- result, and jobqueue_enqueue() for clients that speak only SQL. Additive only: the previous
-- release never reads these objects, and the new columns are nullable or defaulted.

-- Follow-up flags, read by the acknowledgement statements: a job whose flags are all false and
-- whose batch_id is null (the common case) finishes exactly as before, with no further query.
ALTER TABLE jobs
    ADD COLUMN IF NOT EXISTS dependencies_left integer,
    ADD COLUMN IF NOT EXISTS has_dependents    boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS has_waiters       boolean NOT NULL DEFAULT false;

-- One row per edge "job_id waits for depends_on_id". The primary key leads with the
-- dependency, so finding a finished job's dependents is an index range scan, never a scan of
-- the table; the second index answers "what does this job wait for?". No foreign keys: pruning
-- finished jobs must not have to visit their edges.
CREATE TABLE IF NOT EXISTS job_dependencies (
    depends_on_id  bigint  NOT NULL,
    job_id         bigint  NOT NULL,
    run_on_failure boolean NOT NULL DEFAULT false,
    PRIMARY KEY (depends_on_id, job_id)
);
CREATE INDEX IF NOT EXISTS job_dependencies_job_idx ON job_dependencies (job_id);

-- A batch is tracked (a row here, batch_id on its jobs) only when it carries a callback, so
-- plain batches pay nothing when their jobs finish. `finished` counts terminal jobs; the one
-- transaction whose increment reaches `total` enqueues the callback, under this row's lock.
CREATE TABLE IF NOT EXISTS batches (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    total           integer     NOT NULL DEFAULT 0,
    finished        integer     NOT NULL DEFAULT 0,
    on_complete     jsonb       NOT NULL,
    callback_job_id bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    CONSTRAINT batches_on_complete_is_object CHECK (jsonb_typeof(on_complete) = 'object')
);
-- jobqueue: concurrently
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_batch_idx ON jobs (batch_id) WHERE batch_id IS NOT NULL;

-- The API's field rules, for callers that reach the table only through SQL. Errors carry
-- SQLSTATE 22023 and the field in their COLUMN, so drivers can name it.
CREATE OR REPLACE FUNCTION jobqueue_check_job(
    job_type text, payload jsonb, queue_name text, max_tries integer,
    idempotency_key text, timeout_seconds double precision, delay_seconds double precision,
    concurrency_key text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF job_type IS NULL OR length(job_type) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'jobqueue_enqueue: job_type must be 1 to 200 characters'
            USING ERRCODE = '22023', COLUMN = 'job_type';
    END IF;
    IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN
        RAISE EXCEPTION 'jobqueue_enqueue: payload must be a JSON object'
            USING ERRCODE = '22023', COLUMN = 'payload';
    END IF;
    IF octet_length(payload::text) > 256 * 1024 THEN
        RAISE EXCEPTION 'jobqueue_enqueue: payload is over 262144 bytes'
            USING ERRCODE = '22023', COLUMN = 'payload';
    END IF;
    IF queue_name IS NULL OR length(queue_name) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'jobqueue_enqueue: queue_name must be 1 to 200 characters'
            USING ERRCODE = '22023', COLUMN = 'queue_name';
    END IF;
    IF max_tries IS NULL OR max_tries NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'jobqueue_enqueue: max_tries must be between 1 and 1000, got %', max_tries
            USING ERRCODE = '22023', COLUMN = 'max_tries';
    END IF;
    IF idempotency_key IS NOT NULL AND length(idempotency_key) NOT BETWEEN 1 AND 255 THEN
        RAISE EXCEPTION 'jobqueue_enqueue: idempotency_key must be 1 to 255 characters'
            USING ERRCODE = '22023', COLUMN = 'idempotency_key';
    END IF;
    IF concurrency_key IS NOT NULL AND length(concurrency_key) NOT BETWEEN 1 AND 255 THEN
        RAISE EXCEPTION 'jobqueue_enqueue: concurrency_key must be 1 to 255 characters'
            USING ERRCODE = '22023', COLUMN = 'concurrency_key';
    END IF;
    IF timeout_seconds IS NOT NULL
       AND NOT (timeout_seconds > 0 AND timeout_seconds <= 7 * 24 * 3600) THEN
        RAISE EXCEPTION 'jobqueue_enqueue: timeout_seconds must be > 0 and at most 604800'
            USING ERRCODE = '22023', COLUMN = 'timeout_seconds';
    END IF;
    IF delay_seconds IS NOT NULL
       AND NOT (delay_seconds >= 0 AND delay_seconds <= 10 * 365 * 24 * 3600) THEN
        RAISE EXCEPTION 'jobqueue_enqueue: delay_seconds must be >= 0 and at most 315360000'
            USING ERRCODE = '22023', COLUMN = 'delay_seconds';
    END IF;
END $$;

-- Flag and lock the jobs that new dependents will wait for, in id order (so two enqueuers
-- never deadlock), and report their status. The lock is what makes the race with a completion
-- safe: either the completion ran first and we see its status, or it waits for our commit and
-- then sees has_dependents and our edges. `index_path` names the caller's field in errors.
CREATE OR REPLACE FUNCTION jobqueue_lock_dependencies(ids bigint[], index_path text)
RETURNS TABLE (id bigint, status job_status)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    missing bigint;
BEGIN
    UPDATE jobs AS j SET has_dependents = true
    WHERE j.id = ANY (ARRAY(
        SELECT l.id FROM jobs AS l WHERE l.id = ANY (ids) AND NOT l.has_dependents
        ORDER BY l.id FOR NO KEY UPDATE));
    RETURN QUERY
        SELECT l.id, l.status FROM jobs AS l WHERE l.id = ANY (ids) ORDER BY l.id FOR SHARE;
    SELECT m.id INTO missing
    FROM unnest(ids) AS m(id)
    WHERE NOT EXISTS (SELECT 1 FROM jobs AS l WHERE l.id = m.id)
    LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'depends_on: no job has id %', missing
            USING ERRCODE = '23503', COLUMN = 'depends_on',
                  DETAIL = coalesce(index_path, '') || ':' || missing;
    END IF;
END $$;

-- Insert one validated job whose dependencies are already locked by the caller. A dependency
-- that failed or was cancelled cancels the new job at once (unless run_on_failure); one that
-- completed counts as met. Returns the id (the existing job's for a repeated idempotency key).
CREATE OR REPLACE FUNCTION jobqueue_insert_job(
    job_type text, payload jsonb, queue_name text, priority integer, run_at timestamptz,
    delay_seconds double precision, max_tries integer, idempotency_key text,
    timeout_seconds double precision, depends_on bigint[], run_on_failure boolean,
    batch_id bigint, has_dependents boolean, concurrency_key text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    left_count integer := 0;
    broken text;
    new_status job_status := 'pending';
    new_id bigint;
BEGIN
    IF idempotency_key IS NOT NULL THEN
        SELECT j.id INTO new_id FROM jobs AS j WHERE j.idempotency_key = jobqueue_insert_job.idempotency_key;
        IF new_id IS NOT NULL THEN
            RETURN new_id;
        END IF;
    END IF;
    IF cardinality(depends_on) > 0 THEN
        SELECT count(*) FILTER (WHERE d.status::text NOT IN ('completed', 'failed', 'cancelled')),
               min(format('job %s %s', d.id, d.status)) FILTER (
                   WHERE d.status::text IN ('failed', 'cancelled') AND NOT run_on_failure)
        INTO left_count, broken
        FROM jobs AS d WHERE d.id = ANY (depends_on);
        new_status := CASE WHEN broken IS NOT NULL THEN 'cancelled'
                           WHEN left_count > 0 THEN 'blocked'
                           ELSE 'pending' END;
    END IF;
    INSERT INTO jobs (job_type, payload, queue_name, priority, run_at, max_tries,
                      idempotency_key, timeout_seconds, status, dependencies_left,
                      has_dependents, batch_id, last_error, finished_at, concurrency_key)
    VALUES (job_type, payload, queue_name, priority,
            coalesce(run_at, now() + make_interval(secs => coalesce(delay_seconds, 0))),
            max_tries, idempotency_key, timeout_seconds, new_status,
            CASE WHEN cardinality(depends_on) > 0 THEN left_count END,
            coalesce(has_dependents, false), batch_id,
            CASE WHEN broken IS NOT NULL THEN 'cancelled: its dependency ' || broken END,
            CASE WHEN broken IS NOT NULL THEN now() END, concurrency_key)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN  -- a concurrent transaction committed the same key meanwhile
        SELECT j.id INTO new_id FROM jobs AS j WHERE j.idempotency_key = jobqueue_insert_job.idempotency_key;
        RETURN new_id;
    END IF;
    IF cardinality(depends_on) > 0 THEN
        INSERT INTO job_dependencies (depends_on_id, job_id, run_on_failure)
        SELECT DISTINCT d, new_id, coalesce(run_on_failure, false) FROM unnest(depends_on) AS d;
    END IF;
    RETURN new_id;
END $$;

-- The public entry point, for any language and for triggers: the same fields and rules as
-- POST /jobs (a job type is not checked against the handlers, which SQL cannot see).
CREATE OR REPLACE FUNCTION jobqueue_enqueue(
    job_type text,
    payload jsonb DEFAULT '{}'::jsonb,
    queue_name text DEFAULT 'default',
    priority integer DEFAULT 0,
    run_at timestamptz DEFAULT NULL,
    max_tries integer DEFAULT 3,
    idempotency_key text DEFAULT NULL,
    timeout_seconds double precision DEFAULT NULL,
    depends_on bigint[] DEFAULT NULL,
    run_on_failure boolean DEFAULT false,
    delay_seconds double precision DEFAULT NULL,
    concurrency_key text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM jobqueue_check_job(job_type, payload, queue_name, max_tries, idempotency_key,
                               timeout_seconds, delay_seconds, concurrency_key);
    IF run_at IS NOT NULL AND delay_seconds IS NOT NULL THEN
        RAISE EXCEPTION 'jobqueue_enqueue: give run_at or delay_seconds, not both'
            USING ERRCODE = '22023', COLUMN = 'run_at';
    END IF;
    IF cardinality(depends_on) > 0 THEN
        PERFORM jobqueue_lock_dependencies(depends_on, 'depends_on');
    END IF;
    RETURN jobqueue_insert_job(job_type, payload, queue_name, priority, run_at, delay_seconds,
                               max_tries, idempotency_key, timeout_seconds, depends_on,
                               run_on_failure, NULL, false, concurrency_key);
END $$;

-- Enqueue a batch's callback: its spec's payload, extended with the batch id and the counts
-- of the batch's jobs by status. Called once per batch, under the batch row's lock.
CREATE OR REPLACE FUNCTION jobqueue_batch_callback(batch bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    spec jsonb;
    counts jsonb;
    callback bigint;
BEGIN
    SELECT b.on_complete INTO spec FROM batches AS b WHERE b.id = batch;
    SELECT coalesce(jsonb_object_agg(c.status, c.n), '{}'::jsonb) INTO counts
    FROM (SELECT j.status::text AS status, count(*) AS n
          FROM jobs AS j WHERE j.batch_id = batch GROUP BY j.status) AS c;
    callback := jobqueue_insert_job(
        spec ->> 'job_type',
        coalesce(spec -> 'payload', '{}'::jsonb)
            || jsonb_build_object('batch_id', batch, 'counts', counts),
        coalesce(spec ->> 'queue_name', 'default'),
        coalesce((spec ->> 'priority')::integer, 0),
        (spec ->> 'run_at')::timestamptz,
        (spec ->> 'delay_seconds')::double precision,
        coalesce((spec ->> 'max_tries')::integer, 3),
        spec ->> 'idempotency_key',
        (spec ->> 'timeout_seconds')::double precision,
        NULL, false, NULL, false, spec ->> 'concurrency_key');
    UPDATE batches SET callback_job_id = callback, completed_at = now() WHERE id = batch;
    RETURN callback;
END $$;

-- What follows when jobs reach a terminal status, in the transaction that put them there:
-- wake their waiters, count them in their batches (enqueueing a callback when a batch is
-- done), and unblock or cancel their dependents, then the dependents of those cancelled, and
-- so on. Set-based per wave: one read of the finished rows, then only the parts their flags
-- ask for, one index range scan of the edges for those with dependents, and one update per
-- dependent. Rows are locked in id order first, so concurrent acknowledgements never deadlock.
CREATE OR REPLACE FUNCTION jobqueue_jobs_finished(finished_ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    wave bigint[] := finished_ids;
    handled integer := 0;
    waited bigint[];
    batch_ids bigint[];
    parents bigint[];
    failed_parents bigint[];
    cancelled_parents bigint[];
    done_batch bigint;
BEGIN
    WHILE cardinality(wave) > 0 LOOP
        handled := handled + cardinality(wave);
        SELECT array_agg(j.id) FILTER (WHERE j.has_waiters),
               array_agg(DISTINCT j.batch_id) FILTER (WHERE j.batch_id IS NOT NULL),
               array_agg(j.id) FILTER (WHERE j.has_dependents),
               array_agg(j.id) FILTER (WHERE j.has_dependents AND j.status::text = 'failed'),
               array_agg(j.id) FILTER (WHERE j.has_dependents AND j.status::text = 'cancelled')
        INTO waited, batch_ids, parents, failed_parents, cancelled_parents
        FROM jobs AS j WHERE j.id = ANY (wave);

        IF waited IS NOT NULL THEN
            PERFORM pg_notify('jobqueue_job_finished', w::text) FROM unnest(waited) AS w;
        END IF;

        IF batch_ids IS NOT NULL THEN
            PERFORM 1 FROM batches AS b WHERE b.id = ANY (batch_ids)
            ORDER BY b.id FOR NO KEY UPDATE;
            FOR done_batch IN
                UPDATE batches AS b SET finished = b.finished + c.n
                FROM (SELECT j.batch_id, count(*)::integer AS n FROM jobs AS j
                      WHERE j.id = ANY (wave) AND j.batch_id IS NOT NULL
                      GROUP BY j.batch_id) AS c
                WHERE b.id = c.batch_id
                RETURNING CASE WHEN b.finished >= b.total AND b.callback_job_id IS NULL
                               THEN b.id END
            LOOP
                IF done_batch IS NOT NULL THEN
                    PERFORM jobqueue_batch_callback(done_batch);
                END IF;
            END LOOP;
        END IF;

        wave := '{}';
        CONTINUE WHEN parents IS NULL;
        -- Dependents are updated in id order (met is sorted, and the = ANY index scan visits
        -- keys in order: whichever side drives the join, rows come by id), so acknowledgements
        -- that share dependents lock them in the same order and cannot deadlock, without a
        -- separate locking pass.
        WITH met AS MATERIALIZED (
            SELECT e.job_id,
                   count(*)::integer AS n,
                   min(format('job %s %s', e.depends_on_id,
                              CASE WHEN e.depends_on_id = ANY (failed_parents)
                                   THEN 'failed' ELSE 'cancelled' END)) FILTER (
                       WHERE NOT e.run_on_failure
                         AND (e.depends_on_id = ANY (failed_parents)
                              OR e.depends_on_id = ANY (cancelled_parents))) AS broken
            -- one primary-key range scan per finished parent, whatever the planner estimates
            FROM unnest(parents) AS p(id)
            CROSS JOIN LATERAL (
                SELECT x.job_id, x.depends_on_id, x.run_on_failure
                FROM job_dependencies AS x WHERE x.depends_on_id = p.id
                OFFSET 0  -- not flattened: the planner cannot trade it for a scan by job_id
            ) AS e
            GROUP BY e.job_id
            ORDER BY e.job_id
        ),
        changed AS (
            UPDATE jobs AS d
            SET dependencies_left = d.dependencies_left - met.n,
                status = CASE WHEN met.broken IS NOT NULL THEN 'cancelled'
                              WHEN d.dependencies_left - met.n <= 0 THEN 'pending'
                              ELSE 'blocked' END::job_status,
                last_error = CASE WHEN met.broken IS NOT NULL
                                  THEN 'cancelled: its dependency ' || met.broken
                                  ELSE d.last_error END,
                finished_at = CASE WHEN met.broken IS NOT NULL THEN now() END
            FROM met
            WHERE d.id = ANY (ARRAY(SELECT met.job_id FROM met)) AND d.id = met.job_id
              AND d.status::text = 'blocked'
            RETURNING d.id, d.status, d.queue_name
        ),
        woken AS (
            SELECT count(pg_notify('jobqueue_new_job', q.queue_name)) AS n
            FROM (SELECT DISTINCT c.queue_name FROM changed AS c
                  WHERE c.status::text = 'pending') AS q
        )
        SELECT coalesce(array_agg(c.id) FILTER (WHERE c.status::text = 'cancelled'), '{}')
        INTO wave
        FROM changed AS c, woken;
    END LOOP;
    RETURN handled;
END $$;
