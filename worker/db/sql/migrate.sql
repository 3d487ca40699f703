-- Schema migrations: the version table and the session-level advisory lock that lets one
-- process at a time migrate ($1 is the lock key, taken by polling try_lock).

-- name: try_lock
-- params: $1 lock_key
-- Polled, not waited on: a session blocked in pg_advisory_lock sits in a transaction, which a
-- CREATE INDEX CONCURRENTLY of the holder would wait for (a deadlock).
SELECT pg_try_advisory_lock($1::bigint);

-- name: unlock
-- params: $1 lock_key
SELECT pg_advisory_unlock($1::bigint);

-- name: create_version_table
CREATE TABLE IF NOT EXISTS jobqueue_schema_version (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now());

-- name: version_table_exists
SELECT to_regclass('jobqueue_schema_version') IS NOT NULL;

-- name: current_version
SELECT coalesce(max(version), 0) FROM jobqueue_schema_version;

-- name: record_version
-- params: $1 version, $2 name
INSERT INTO jobqueue_schema_version (version, name) VALUES ($1, $2);
