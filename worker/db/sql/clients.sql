-- What the Python clients (worker/client.py) send through the caller's own connection, whatever
-- its driver. Parameters are written :name, as SQLAlchemy's text() takes them; the module turns
-- them into $n for asyncpg and %(name)s for psycopg. CAST, not ::, so no driver misreads a colon.

-- name: jobs_enqueue
SELECT jobqueue_enqueue(
    job_type => CAST(:job_type AS text),
    payload => CAST(CAST(:payload AS text) AS jsonb),
    queue_name => CAST(:queue_name AS text),
    priority => CAST(:priority AS integer),
    run_at => CAST(:run_at AS timestamptz),
    max_tries => CAST(:max_tries AS integer),
    idempotency_key => CAST(:idempotency_key AS text),
    timeout_seconds => CAST(:timeout_seconds AS double precision),
    depends_on => CAST(:depends_on AS bigint[]),
    run_on_failure => CAST(:run_on_failure AS boolean),
    delay_seconds => CAST(:delay_seconds AS double precision),
    concurrency_key => CAST(:concurrency_key AS text),
    unique_key => CAST(:unique_key AS text)
) AS id;

-- name: jobs_enqueue_many
-- Many jobs in one round trip: :jobs is a JSON array of objects with the fields above and
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
    FROM jsonb_to_recordset(CAST(CAST(:jobs AS text) AS jsonb)) AS j(
        n integer, job_type text, payload jsonb, queue_name text, priority integer,
        run_at timestamptz, max_tries integer, idempotency_key text,
        timeout_seconds double precision, depends_on bigint[], run_on_failure boolean,
        delay_seconds double precision, concurrency_key text, unique_key text)
    ORDER BY j.n
) AS enqueued;
