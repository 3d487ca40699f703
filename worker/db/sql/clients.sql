-- What the Python clients (worker/client.py) send through the caller's own connection, whatever
-- its driver. Parameters are written $n, as asyncpg takes them; worker/db/clients.py turns each
-- into the name its `-- params:` line gives it, :name for SQLAlchemy's text() and %(name)s for
-- psycopg. CAST, not ::, so that no driver misreads a colon.

-- name: jobs_enqueue
-- params: $1 job_type, $2 payload, $3 queue_name, $4 priority, $5 run_at, $6 max_tries,
--         $7 idempotency_key, $8 timeout_seconds, $9 depends_on, $10 run_on_failure,
--         $11 delay_seconds, $12 concurrency_key, $13 unique_key
SELECT jobqueue_enqueue(
    job_type => CAST($1 AS text),
    payload => CAST(CAST($2 AS text) AS jsonb),
    queue_name => CAST($3 AS text),
    priority => CAST($4 AS integer),
    run_at => CAST($5 AS timestamptz),
    max_tries => CAST($6 AS integer),
    idempotency_key => CAST($7 AS text),
    timeout_seconds => CAST($8 AS double precision),
    depends_on => CAST($9 AS bigint[]),
    run_on_failure => CAST($10 AS boolean),
    delay_seconds => CAST($11 AS double precision),
    concurrency_key => CAST($12 AS text),
    unique_key => CAST($13 AS text)
) AS id;

-- name: jobs_enqueue_many
-- params: $1 jobs
-- Many jobs in one round trip: $1 is a JSON array of objects with the fields above and
-- `n`, the item's place. jobqueue_enqueue runs once per item, in order, so the rules (and an
-- idempotency or unique key repeated within the array) are those of one call after another.
SELECT coalesce(array_agg(id ORDER BY n), '{}') AS ids
FROM (
    SELECT j.n, jobqueue_enqueue(
        job_type => j.job_type,
        payload => coalesce(j.payload, '{}'::jsonb),
        queue_name => coalesce(j.queue_name, 'default'),
        priority => coalesce(j.priority, 0),
        run_at => j.run_at,
        max_tries => coalesce(j.max_tries, 3),
        idempotency_key => j.idempotency_key,
        timeout_seconds => j.timeout_seconds,
        depends_on => j.depends_on,
        run_on_failure => coalesce(j.run_on_failure, false),
        delay_seconds => j.delay_seconds,
        concurrency_key => j.concurrency_key,
        unique_key => j.unique_key
    ) AS id
    FROM jsonb_to_recordset(CAST(CAST($1 AS text) AS jsonb)) AS j(
        n integer, job_type text, payload jsonb, queue_name text, priority integer,
        run_at timestamptz, max_tries integer, idempotency_key text,
        timeout_seconds double precision, depends_on bigint[], run_on_failure boolean,
        delay_seconds double precision, concurrency_key text, unique_key text)
    ORDER BY j.n
) AS enqueued;
