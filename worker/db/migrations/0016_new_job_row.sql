-- One function builds a new job's row: jobqueue_new_job. Every enqueue path inserts what it
-- returns (the batch statements of worker/db/sql/jobs.sql, the unique insert, and
-- jobqueue_insert_job below, which jobqueue_enqueue, the Python clients and a batch's callback
-- go through), so the rules for a new row are written once and cannot drift apart between
-- them. tests/unit/test_new_job_row.py fails on an INSERT INTO jobs that does not take its row
-- from here.
--
-- Additive: a new function, and jobqueue_insert_job redefined with the very parameter list,
-- defaults and answers it had (the previous release's jobqueue_enqueue and
-- jobqueue_batch_callback call it), writing the same row.

-- The new row's columns, in the order every INSERT INTO jobs lists them. The caller decides
-- what only it can know (a workflow's status, dependencies_left and last_error; ids), and
-- checks the fields first; the rules that every path shares are here:
--   - run_at: the given time, else now() plus delay_seconds (none: now);
--   - status: pending unless given; a job born cancelled (a dependency had failed) is
--     finished at once;
--   - has_dependents: false unless given.
-- LANGUAGE sql, STABLE, not STRICT and returning a set: PostgreSQL then inlines the call into
-- the statement that makes it, so a LATERAL call in a set-based INSERT costs no function call
-- per row (tests/integration/test_new_job_row.py reads the plans). Parameters are p_-prefixed
-- because a RETURNS TABLE column cannot share a parameter's name.
CREATE OR REPLACE FUNCTION jobqueue_new_job(
    p_job_type text,
    p_payload jsonb,
    p_queue_name text,
    p_priority integer,
    p_run_at timestamptz,
    p_delay_seconds double precision,
    p_max_tries integer,
    p_idempotency_key text,
    p_timeout_seconds double precision,
    p_concurrency_key text,
    p_traceparent text DEFAULT NULL,
    p_unique_key text DEFAULT NULL,
    p_status job_status DEFAULT NULL,
    p_dependencies_left integer DEFAULT NULL,
    p_has_dependents boolean DEFAULT NULL,
    p_batch_id bigint DEFAULT NULL,
    p_last_error text DEFAULT NULL
) RETURNS TABLE (
    job_type text, payload jsonb, queue_name text, priority integer, run_at timestamptz,
    max_tries integer, idempotency_key text, timeout_seconds double precision,
    status job_status, dependencies_left integer, has_dependents boolean, batch_id bigint,
    last_error text, finished_at timestamptz, concurrency_key text, traceparent text,
    unique_key text
)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT p_job_type, p_payload, p_queue_name, p_priority,
           coalesce(p_run_at, now() + make_interval(secs => coalesce(p_delay_seconds, 0))),
           p_max_tries, p_idempotency_key, p_timeout_seconds,
           coalesce(p_status, 'pending'), p_dependencies_left, coalesce(p_has_dependents, false),
           p_batch_id, p_last_error, CASE WHEN p_status = 'cancelled' THEN now() END,
           p_concurrency_key, p_traceparent, p_unique_key
$$;

-- As in 0013, with its row from jobqueue_new_job: the status and last_error that the
-- dependencies decide are worked out here, as before, and the builder does the rest.
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
                      traceparent, unique_key)
    SELECT n.*
    FROM jobqueue_new_job(
        p_job_type => jobqueue_insert_job.job_type,
        p_payload => jobqueue_insert_job.payload,
        p_queue_name => jobqueue_insert_job.queue_name,
        p_priority => jobqueue_insert_job.priority,
        p_run_at => jobqueue_insert_job.run_at,
        p_delay_seconds => jobqueue_insert_job.delay_seconds,
        p_max_tries => jobqueue_insert_job.max_tries,
        p_idempotency_key => jobqueue_insert_job.idempotency_key,
        p_timeout_seconds => jobqueue_insert_job.timeout_seconds,
        p_concurrency_key => jobqueue_insert_job.concurrency_key,
        p_unique_key => jobqueue_insert_job.unique_key,
        p_status => new_status,
        p_dependencies_left => CASE WHEN cardinality(depends_on) > 0 THEN left_count END,
        p_has_dependents => jobqueue_insert_job.has_dependents,
        p_batch_id => jobqueue_insert_job.batch_id,
        p_last_error => CASE WHEN broken IS NOT NULL
                             THEN 'cancelled: its dependency ' || broken END
    ) AS n
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
