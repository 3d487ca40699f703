-- unique_key for callers that reach the table only through SQL, and so for worker.client on
-- every driver: jobqueue_enqueue(..., unique_key => 'k') enqueues at most one active job
-- (pending, running or blocked) per key, and returns the active job's id to a duplicate, as
-- POST /jobs does. jobqueue_enqueue also checks queue names, as the API does since 0010.
--
-- Additive for callers: both functions keep every parameter, name and default they had and
-- gain `unique_key text DEFAULT NULL` last, so the previous release's calls (by name, or
-- positional like jobqueue_batch_callback's) resolve to the new functions. A parameter list
-- cannot change in place, hence DROP of the old list and CREATE OR REPLACE of the new, in the
-- migration's one transaction; run again (a migration stopped part-way), it changes nothing.

DROP FUNCTION IF EXISTS jobqueue_insert_job(
    text, jsonb, text, integer, timestamptz, double precision, integer, text,
    double precision, bigint[], boolean, bigint, boolean, text);

-- As in 0007, plus the unique key in the row. A clash on the key raises unique_violation
-- (jobs_unique_key_active_idx), which jobqueue_enqueue turns into "that job".
CREATE OR REPLACE FUNCTION jobqueue_insert_job(
    job_type text, payload jsonb, queue_name text, priority integer, run_at timestamptz,
    delay_seconds double precision, max_tries integer, idempotency_key text,
    timeout_seconds double precision, depends_on bigint[], run_on_failure boolean,
    batch_id bigint, has_dependents boolean, concurrency_key text DEFAULT NULL,
    unique_key text DEFAULT NULL
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
                      has_dependents, batch_id, last_error, finished_at, concurrency_key,
                      unique_key)
    VALUES (job_type, payload, queue_name, priority,
            coalesce(run_at, now() + make_interval(secs => coalesce(delay_seconds, 0))),
            max_tries, idempotency_key, timeout_seconds, new_status,
            CASE WHEN cardinality(depends_on) > 0 THEN left_count END,
            coalesce(has_dependents, false), batch_id,
            CASE WHEN broken IS NOT NULL THEN 'cancelled: its dependency ' || broken END,
            CASE WHEN broken IS NOT NULL THEN now() END, concurrency_key, unique_key)
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

DROP FUNCTION IF EXISTS jobqueue_enqueue(
    text, jsonb, text, integer, timestamptz, integer, text, double precision, bigint[],
    boolean, double precision, text);

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
    concurrency_key text DEFAULT NULL,
    unique_key text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    found bigint;
BEGIN
    PERFORM jobqueue_check_job(job_type, payload, queue_name, max_tries, idempotency_key,
                               timeout_seconds, delay_seconds, concurrency_key);
    -- Queue names as the API and the clients check them (worker.job_checks.QueueName): they go
    -- in URLs (/queues/{name}) and in WORKER_QUEUES, so they keep to a set that needs no
    -- escaping there. Queues named otherwise before still work for workers and lists.
    IF length(queue_name) > 128 OR queue_name !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' THEN
        RAISE EXCEPTION 'jobqueue_enqueue: queue_name must be 1 to 128 letters, digits, '
            '''_'', ''-'', ''.'' or '':'', starting with a letter or a digit'
            USING ERRCODE = '22023', COLUMN = 'queue_name';
    END IF;
    IF unique_key IS NOT NULL AND length(unique_key) NOT BETWEEN 1 AND 255 THEN
        RAISE EXCEPTION 'jobqueue_enqueue: unique_key must be 1 to 255 characters'
            USING ERRCODE = '22023', COLUMN = 'unique_key';
    END IF;
    IF run_at IS NOT NULL AND delay_seconds IS NOT NULL THEN
        RAISE EXCEPTION 'jobqueue_enqueue: give run_at or delay_seconds, not both'
            USING ERRCODE = '22023', COLUMN = 'run_at';
    END IF;
    IF unique_key IS NULL THEN
        IF cardinality(depends_on) > 0 THEN
            PERFORM jobqueue_lock_dependencies(depends_on, 'depends_on');
        END IF;
        RETURN jobqueue_insert_job(job_type, payload, queue_name, priority, run_at,
                                   delay_seconds, max_tries, idempotency_key, timeout_seconds,
                                   depends_on, run_on_failure, NULL, false, concurrency_key);
    END IF;
    -- A key's holder is read first; of concurrent inserts with one key the index lets one
    -- in, and the others read it once it commits. A round is lost only when the holder
    -- finished between the read and the insert.
    FOR round IN 1..10 LOOP
        IF idempotency_key IS NOT NULL THEN
            SELECT j.id INTO found FROM jobs AS j WHERE j.idempotency_key = idempotency_key;
            IF found IS NOT NULL THEN
                RETURN found;
            END IF;
        END IF;
        SELECT j.id INTO found FROM jobs AS j
        WHERE j.unique_key = unique_key AND j.status IN ('pending', 'running', 'blocked');
        IF found IS NOT NULL THEN
            RETURN found;
        END IF;
        BEGIN
            IF cardinality(depends_on) > 0 THEN
                PERFORM jobqueue_lock_dependencies(depends_on, 'depends_on');
            END IF;
            RETURN jobqueue_insert_job(job_type, payload, queue_name, priority, run_at,
                                       delay_seconds, max_tries, idempotency_key,
                                       timeout_seconds, depends_on, run_on_failure, NULL,
                                       false, concurrency_key, unique_key);
        EXCEPTION WHEN unique_violation THEN
            NULL;  -- taken meanwhile: read the holder in the next round
        END;
    END LOOP;
    RAISE EXCEPTION 'jobqueue_enqueue: unique_key %: its holder kept changing; try again',
        unique_key USING ERRCODE = '40001', COLUMN = 'unique_key';
END $$;
