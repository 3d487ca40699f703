-- Shared groundwork for scheduling, flow control, workflows and the console. Additive only:
-- the previous release never reads these objects and keeps working on this schema.

-- A job waiting on dependencies. ADD VALUE may run inside the migration's transaction; the
-- value can be used from the next transaction on, which is all later migrations need.
ALTER TYPE job_status ADD VALUE IF NOT EXISTS 'blocked';

-- One row per queue that someone configured: pause state and limits. A queue without a row
-- is unpaused and unlimited, so the claim's common case reads no row here.
CREATE TABLE IF NOT EXISTS queues (
    name                   text PRIMARY KEY,
    paused                 boolean     NOT NULL DEFAULT false,
    concurrency_limit      integer,
    key_concurrency_limit  integer,
    rate_limit_jobs        integer,
    rate_limit_per_seconds double precision,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT queues_name_not_empty CHECK (name <> ''),
    CONSTRAINT queues_concurrency_limit_positive CHECK (concurrency_limit > 0),
    CONSTRAINT queues_key_concurrency_limit_positive CHECK (key_concurrency_limit > 0),
    CONSTRAINT queues_rate_limit_whole CHECK (
        (rate_limit_jobs IS NULL) = (rate_limit_per_seconds IS NULL)),
    CONSTRAINT queues_rate_limit_positive CHECK (
        rate_limit_jobs > 0 AND rate_limit_per_seconds > 0)
);

-- The controller's scaling decisions, so the console shows them without Kubernetes
-- credentials. Small: one row per change of replicas (or of the binding reason), pruned by age.
CREATE TABLE IF NOT EXISTS scaling_decisions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    decided_at    timestamptz NOT NULL DEFAULT now(),
    namespace     text        NOT NULL,
    deployment    text        NOT NULL,
    from_replicas integer     NOT NULL,
    to_replicas   integer     NOT NULL,
    reason        text        NOT NULL,
    detail        jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS scaling_decisions_deployment_idx
    ON scaling_decisions (namespace, deployment, decided_at DESC);
CREATE INDEX IF NOT EXISTS scaling_decisions_decided_at_idx
    ON scaling_decisions (decided_at);

-- Periodic jobs: one row per schedule. `job` is the spec each tick enqueues
-- ({job_type, payload, queue_name?, priority?, max_tries?}); exactly one job per tick comes from
-- a unique key per (schedule, tick), which the scheduling feature adds with its own index.
CREATE TABLE IF NOT EXISTS schedules (
    name          text PRIMARY KEY,
    cron          text,
    every_seconds double precision,
    timezone      text        NOT NULL DEFAULT 'UTC',
    job           jsonb       NOT NULL,
    paused        boolean     NOT NULL DEFAULT false,
    catch_up      text        NOT NULL DEFAULT 'one',
    next_run_at   timestamptz,
    last_run_at   timestamptz,
    last_job_id   bigint,
    source        text        NOT NULL DEFAULT 'api',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedules_name_not_empty CHECK (name <> ''),
    CONSTRAINT schedules_one_timing CHECK ((cron IS NULL) <> (every_seconds IS NULL)),
    CONSTRAINT schedules_every_positive CHECK (every_seconds > 0),
    CONSTRAINT schedules_catch_up_known CHECK (catch_up IN ('one', 'skip')),
    CONSTRAINT schedules_job_is_object CHECK (jsonb_typeof(job) = 'object')
);

-- The optional job fields that DESIGN.md names, all nullable or defaulted, so adding them
-- rewrites nothing and the previous release's INSERTs and SELECTs are unchanged. Each feature
-- adds the indexes that its own queries need.
ALTER TABLE jobs
    ADD COLUMN IF NOT EXISTS unique_key       text,
    ADD COLUMN IF NOT EXISTS concurrency_key  text,
    ADD COLUMN IF NOT EXISTS batch_id         bigint,
    ADD COLUMN IF NOT EXISTS progress         real,
    ADD COLUMN IF NOT EXISTS progress_message text,
    ADD COLUMN IF NOT EXISTS snoozes          integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS traceparent      text;
