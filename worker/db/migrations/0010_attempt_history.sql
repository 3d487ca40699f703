-- Each attempt's story, kept beside the job (issue 24): the error and traceback of every failed
-- attempt, and the lines its handler logged through ctx.logger. Append-only: rows are
-- inserted with the attempt's acknowledgement, read by GET /jobs/{id} and the console, and
-- pruned by age with the retention; never updated. No foreign key, so that pruning jobs costs
-- no lookup here, and so that the storage layout can move these tables on its own terms.
-- Additive only: the previous release never reads them and keeps working on this schema.

CREATE TABLE IF NOT EXISTS job_errors (
    job_id    bigint      NOT NULL,
    attempt   integer     NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    error     text        NOT NULL,
    traceback text
);
-- GET /jobs/{id}: one job's errors, newest attempt first
CREATE INDEX IF NOT EXISTS job_errors_job_idx ON job_errors (job_id, attempt);
-- retention: the oldest rows first
CREATE INDEX IF NOT EXISTS job_errors_at_idx ON job_errors (at);

CREATE TABLE IF NOT EXISTS job_logs (
    id      bigint      GENERATED ALWAYS AS IDENTITY,
    job_id  bigint      NOT NULL,
    attempt integer     NOT NULL,
    at      timestamptz NOT NULL,
    level   text        NOT NULL,
    message text        NOT NULL
);
-- one job's lines in the order they were logged, and its stored size for the per-job cap
CREATE INDEX IF NOT EXISTS job_logs_job_idx ON job_logs (job_id, id);
CREATE INDEX IF NOT EXISTS job_logs_at_idx ON job_logs (at);
