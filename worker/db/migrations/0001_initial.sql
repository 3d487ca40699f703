-- Jobs, workers and the NOTIFY trigger. Applied once by `jobqueue migrate`.

DO $$ BEGIN
    CREATE TYPE job_status AS ENUM ('pending', 'running', 'completed', 'failed', 'cancelled');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE IF NOT EXISTS jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_name       text        NOT NULL DEFAULT 'default',
    job_type         text        NOT NULL,
    payload          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status           job_status  NOT NULL DEFAULT 'pending',
    priority         integer     NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    max_tries        integer     NOT NULL DEFAULT 3,
    last_error       text,
    result           jsonb,
    idempotency_key  text,
    timeout_seconds  double precision,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    -- the lease: owner and expiry, set by every claim; attempts is the fencing token
    worker_id        uuid,
    lease_expires_at timestamptz,
    CONSTRAINT jobs_payload_is_object CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT jobs_max_tries_positive CHECK (max_tries >= 1),
    CONSTRAINT jobs_queue_name_not_empty CHECK (queue_name <> ''),
    CONSTRAINT jobs_job_type_not_empty CHECK (job_type <> '')
) WITH (
    -- a hot queue table: leave room for HOT updates, vacuum and analyze early
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 0
);

-- The claim's one shape: this partial index serves WHERE, ORDER BY and LIMIT.
CREATE INDEX IF NOT EXISTS jobs_claim_idx
    ON jobs (queue_name, priority DESC, run_at, id)
    WHERE status = 'pending';

-- Lease expiry scans for rescue, only over running jobs.
CREATE INDEX IF NOT EXISTS jobs_running_idx
    ON jobs (lease_expires_at)
    WHERE status = 'running';

-- Retention and "done in the last minute", only over finished jobs.
CREATE INDEX IF NOT EXISTS jobs_finished_idx
    ON jobs (finished_at)
    WHERE status IN ('completed', 'failed', 'cancelled');

CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency_key_idx
    ON jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS workers (
    id            uuid        PRIMARY KEY,
    name          text        NOT NULL,
    queues        text[]      NOT NULL,
    concurrency   integer     NOT NULL,
    in_flight     integer     NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);

CREATE INDEX IF NOT EXISTS workers_name_idx ON workers (name);

-- One NOTIFY per statement and queue, not per row.
CREATE OR REPLACE FUNCTION jobs_notify_new() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    queue text;
BEGIN
    FOR queue IN SELECT DISTINCT queue_name FROM new_jobs WHERE status = 'pending' LOOP
        PERFORM pg_notify('jobqueue_new_job', queue);
    END LOOP;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS jobs_notify_new ON jobs;
CREATE TRIGGER jobs_notify_new
    AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_new();
