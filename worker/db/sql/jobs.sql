-- The write side users see: enqueue, look up, cancel, retry.
-- Payloads travel as JSON text and are cast here, so callers' own connections need no codec.
--
-- insert_jobs, insert_jobs_brief and insert_planned_jobs read new jobs' fields the same way,
-- as worker.db.jobs._arguments sends them: the same `input`, written out in each (a statement
-- runs as written; tests/unit/test_sql_files.py keeps the copies the same). The client encodes
-- each element of an array parameter, a good part of a large batch's cost, so columns travel
-- as arrays only where they must: $2 holds every payload as one JSON array (its elements are
-- the rows); a column every job shares ($1, $3, $4, $7) is a NULL array and its one value is
-- $12 to $15; an optional column no job sets ($5, $6, $8 to $11: run_at to the W3C
-- traceparents) is a NULL array. ROWS FROM pads a NULL array with NULLs.
--
-- Each new row is what jobqueue_new_job (migration 0016) makes of its fields, as on every
-- enqueue path. PostgreSQL inlines that call into the INSERT, so it costs no call per row.

-- name: insert_jobs
-- params: $1 job_types, $2 payloads, $3 queue_names, $4 priorities, $5 run_ats, $6 delays,
--         $7 max_tries, $8 idempotency_keys, $9 timeouts, $10 concurrency_keys, $11 traceparents,
--         $12 job_type, $13 queue_name, $14 priority, $15 tries
-- Returns the rows this statement inserted (created = true, in input order by id) and the rows
-- that already held one of the idempotency keys before it ran (created = false).
WITH input AS (
    SELECT coalesce(t.job_type, $12::text) AS job_type, t.payload,
           coalesce(t.queue_name, $13::text) AS queue_name,
           coalesce(t.priority, $14::int) AS priority, t.run_at, t.delay_seconds,
           coalesce(t.max_tries, $15::int) AS max_tries, t.idempotency_key, t.timeout_seconds,
           t.concurrency_key, t.traceparent, t.ord
    FROM ROWS FROM (unnest($1::text[]), jsonb_array_elements($2::text::jsonb),
                    unnest($3::text[]), unnest($4::int[]), unnest($5::timestamptz[]),
                    unnest($6::float8[]), unnest($7::int[]), unnest($8::text[]),
                    unnest($9::float8[]), unnest($10::text[]), unnest($11::text[]))
        WITH ORDINALITY AS t(job_type, payload, queue_name, priority, run_at,
                             delay_seconds, max_tries, idempotency_key, timeout_seconds,
                             concurrency_key, traceparent, ord)
),
inserted AS (
    INSERT INTO jobs (job_type, payload, queue_name, priority, run_at, max_tries,
                      idempotency_key, timeout_seconds, status, dependencies_left,
                      has_dependents, batch_id, last_error, finished_at, concurrency_key,
                      traceparent, unique_key)
    SELECT n.*
    FROM input AS i
    CROSS JOIN LATERAL jobqueue_new_job(
        p_job_type => i.job_type, p_payload => i.payload, p_queue_name => i.queue_name,
        p_priority => i.priority, p_run_at => i.run_at, p_delay_seconds => i.delay_seconds,
        p_max_tries => i.max_tries, p_idempotency_key => i.idempotency_key,
        p_timeout_seconds => i.timeout_seconds, p_concurrency_key => i.concurrency_key,
        p_traceparent => i.traceparent) AS n
    ORDER BY i.ord
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *
)
SELECT true AS created, inserted.* FROM inserted
UNION ALL
SELECT false AS created, *
FROM jobs
WHERE jobs.idempotency_key = ANY (SELECT idempotency_key FROM input WHERE idempotency_key IS NOT NULL);

-- name: insert_jobs_brief
-- params: $1 job_types, $2 payloads, $3 queue_names, $4 priorities, $5 run_ats, $6 delays,
--         $7 max_tries, $8 idempotency_keys, $9 timeouts, $10 concurrency_keys, $11 traceparents,
--         $12 job_type, $13 queue_name, $14 priority, $15 tries
-- insert_jobs, returning only what pairing and a batch's answer need: decoding whole rows
-- (payload included) is most of a large batch's cost. Same text apart from the two column lists
-- (RETURNING, and the final SELECT's).
WITH input AS (
    SELECT coalesce(t.job_type, $12::text) AS job_type, t.payload,
           coalesce(t.queue_name, $13::text) AS queue_name,
           coalesce(t.priority, $14::int) AS priority, t.run_at, t.delay_seconds,
           coalesce(t.max_tries, $15::int) AS max_tries, t.idempotency_key, t.timeout_seconds,
           t.concurrency_key, t.traceparent, t.ord
    FROM ROWS FROM (unnest($1::text[]), jsonb_array_elements($2::text::jsonb),
                    unnest($3::text[]), unnest($4::int[]), unnest($5::timestamptz[]),
                    unnest($6::float8[]), unnest($7::int[]), unnest($8::text[]),
                    unnest($9::float8[]), unnest($10::text[]), unnest($11::text[]))
        WITH ORDINALITY AS t(job_type, payload, queue_name, priority, run_at,
                             delay_seconds, max_tries, idempotency_key, timeout_seconds,
                             concurrency_key, traceparent, ord)
),
inserted AS (
    INSERT INTO jobs (job_type, payload, queue_name, priority, run_at, max_tries,
                      idempotency_key, timeout_seconds, status, dependencies_left,
                      has_dependents, batch_id, last_error, finished_at, concurrency_key,
                      traceparent, unique_key)
    SELECT n.*
    FROM input AS i
    CROSS JOIN LATERAL jobqueue_new_job(
        p_job_type => i.job_type, p_payload => i.payload, p_queue_name => i.queue_name,
        p_priority => i.priority, p_run_at => i.run_at, p_delay_seconds => i.delay_seconds,
        p_max_tries => i.max_tries, p_idempotency_key => i.idempotency_key,
        p_timeout_seconds => i.timeout_seconds, p_concurrency_key => i.concurrency_key,
        p_traceparent => i.traceparent) AS n
    ORDER BY i.ord
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, idempotency_key, status, queue_name
)
SELECT true AS created, inserted.* FROM inserted
UNION ALL
SELECT false AS created, id, idempotency_key, status, queue_name
FROM jobs
WHERE jobs.idempotency_key = ANY (SELECT idempotency_key FROM input WHERE idempotency_key IS NOT NULL);

-- name: insert_planned_jobs
-- params: $1 job_types, $2 payloads, $3 queue_names, $4 priorities, $5 run_ats, $6 delays,
--         $7 max_tries, $8 idempotency_keys, $9 timeouts, $10 concurrency_keys, $11 traceparents,
--         $12 job_type, $13 queue_name, $14 priority, $15 tries,
--         $16 ids, $17 statuses, $18 lefts, $19 dependents, $20 status, $21 left, $22 dependent,
--         $23 last_errors, $24 unique_keys, $25 batch_id
-- Jobs whose id, status and dependency fields are decided already (a workflow batch, as
-- worker.db.batch_plan worked it out), in one statement: insert_jobs' input, and per job $16 its
-- id, then $17 status, $18 dependencies_left and $19 has_dependents (NULL arrays when all jobs
-- share the value in $20, $21, $22), $23 last_error and $24 unique_key (NULL when none has
-- one), $25 the batch. A key (idempotency or unique: no conflict target) that another
-- transaction committed meanwhile inserts nothing; the caller, seeing fewer ids, starts over.
-- Keyed rows go in key order, as in unique_jobs: each insert holds its key's index entry until
-- commit, so two batches sharing keys in opposite orders must not wait on each other (the ids
-- are fixed already, so the order costs nothing).
WITH input AS (
    SELECT coalesce(t.job_type, $12::text) AS job_type, t.payload,
           coalesce(t.queue_name, $13::text) AS queue_name,
           coalesce(t.priority, $14::int) AS priority, t.run_at, t.delay_seconds,
           coalesce(t.max_tries, $15::int) AS max_tries, t.idempotency_key, t.timeout_seconds,
           t.concurrency_key, t.traceparent, t.ord
    FROM ROWS FROM (unnest($1::text[]), jsonb_array_elements($2::text::jsonb),
                    unnest($3::text[]), unnest($4::int[]), unnest($5::timestamptz[]),
                    unnest($6::float8[]), unnest($7::int[]), unnest($8::text[]),
                    unnest($9::float8[]), unnest($10::text[]), unnest($11::text[]))
        WITH ORDINALITY AS t(job_type, payload, queue_name, priority, run_at,
                             delay_seconds, max_tries, idempotency_key, timeout_seconds,
                             concurrency_key, traceparent, ord)
),
planned AS (
    SELECT p.id, coalesce(p.status, $20::text) AS status,
           coalesce(p.dependencies_left, $21::int) AS dependencies_left,
           coalesce(p.has_dependents, $22::boolean) AS has_dependents,
           p.last_error, p.unique_key, p.ord
    FROM ROWS FROM (unnest($16::bigint[]), unnest($17::text[]), unnest($18::int[]),
                    unnest($19::boolean[]), unnest($23::text[]), unnest($24::text[]))
        WITH ORDINALITY AS p(id, status, dependencies_left, has_dependents, last_error,
                             unique_key, ord)
)
INSERT INTO jobs (id, job_type, payload, queue_name, priority, run_at, max_tries,
                  idempotency_key, timeout_seconds, status, dependencies_left,
                  has_dependents, batch_id, last_error, finished_at, concurrency_key,
                  traceparent, unique_key)
OVERRIDING SYSTEM VALUE
SELECT p.id, n.*
FROM input AS i
JOIN planned AS p USING (ord)
CROSS JOIN LATERAL jobqueue_new_job(
    p_job_type => i.job_type, p_payload => i.payload, p_queue_name => i.queue_name,
    p_priority => i.priority, p_run_at => i.run_at, p_delay_seconds => i.delay_seconds,
    p_max_tries => i.max_tries, p_idempotency_key => i.idempotency_key,
    p_timeout_seconds => i.timeout_seconds, p_concurrency_key => i.concurrency_key,
    p_traceparent => i.traceparent, p_unique_key => p.unique_key,
    p_status => p.status::job_status, p_dependencies_left => p.dependencies_left,
    p_has_dependents => p.has_dependents, p_batch_id => $25::bigint,
    p_last_error => p.last_error) AS n
ORDER BY p.unique_key NULLS LAST, i.idempotency_key NULLS LAST, p.id
ON CONFLICT DO NOTHING
RETURNING id;

-- name: jobs_by_idempotency_keys
-- params: $1 keys
SELECT false AS created, * FROM jobs WHERE idempotency_key = ANY ($1::text[]);

-- name: get_job
-- params: $1 job_id
SELECT * FROM jobs WHERE id = $1;

-- name: cancel_job
-- params: $1 job_id
-- A running job keeps its worker_id; that worker's fenced writes now change nothing, and the
-- notification lets it stop the handler at once. A blocked job (waiting on dependencies) can
-- be cancelled too; its own dependents, waiters and batch follow up (migration 0007).
WITH cancelled AS (
    UPDATE jobs
    SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
    WHERE id = $1 AND status IN ('pending', 'running', 'blocked')
    RETURNING *
)
SELECT cancelled.*,
       CASE WHEN cancelled.worker_id IS NOT NULL
            THEN pg_notify('jobqueue_cancel', cancelled.id::text) END AS notified,
       CASE WHEN cancelled.has_dependents OR cancelled.has_waiters
                 OR cancelled.batch_id IS NOT NULL
            THEN jobqueue_jobs_finished(ARRAY[cancelled.id]) END AS followed
FROM cancelled;

-- name: retry_job
-- params: $1 job_id
WITH retried AS (
    UPDATE jobs
    SET status = 'pending', run_at = now(), started_at = NULL, finished_at = NULL,
        worker_id = NULL, lease_expires_at = NULL, result = NULL,
        -- a retry starts afresh: the failed attempts' errors stay in job_errors
        last_error = NULL,
        max_tries = greatest(max_tries, attempts + 1)
    WHERE id = $1 AND status IN ('failed', 'cancelled')
    RETURNING *
)
SELECT retried.*, pg_notify('jobqueue_new_job', retried.queue_name) AS notified
FROM retried;
