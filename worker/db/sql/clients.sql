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
    concurrency_key => CAST(:concurrency_key AS text)
) AS id;
