-- A worker's own row in `workers`: registration, heartbeat, deregistration, its liveness lock,
-- and the probe of an idle connection.

-- name: register_worker
-- params: $1 worker_id, $2 name, $3 queues, $4 concurrency, $5 in_flight,
--         $6 lease_seconds, $7 lock_key
-- Also the heartbeat: it renews the worker's lease (and re-registers a worker that a sweeper
-- removed while it was cut off). $7 is the key of the liveness lock its LISTEN connection
-- holds (migration 0014), or NULL for a caller that holds none: the lease rule alone applies.
INSERT INTO workers AS w (id, name, queues, concurrency, in_flight, heartbeat_at, lease_expires_at,
                          lock_key)
VALUES ($1, $2, $3, $4, $5, now(), now() + make_interval(secs => $6), $7)
ON CONFLICT (id) DO UPDATE
SET in_flight = excluded.in_flight, heartbeat_at = excluded.heartbeat_at,
    lease_expires_at = excluded.lease_expires_at, lock_key = excluded.lock_key;

-- name: next_lock_key
-- A liveness lock key no live worker has, taken once per process.
SELECT nextval('workers_lock_key_seq')::integer;

-- name: hold_liveness
-- params: $1 lock_key
-- On the worker's LISTEN connection, for the session's life: the lock whose release tells
-- rescuers that the worker is gone. Waits while a rescuer holds it (one transaction), within
-- the connection's statement_timeout. The session is exempt from an idle_session_timeout
-- (PostgreSQL 14+) set on the role or database: its end would free the lock, and a live
-- worker's jobs would be rescued. It holds no transaction open between statements, so the
-- idle_in_transaction_session_timeout of every connection of ours still applies.
SELECT CASE WHEN current_setting('server_version_num')::integer >= 140000
            THEN set_config('idle_session_timeout', '0', false) END AS idle_exempt,
       jobqueue_liveness_hold($1) AS held;

-- name: deregister_worker
-- params: $1 worker_id
DELETE FROM workers WHERE id = $1;

-- name: probe
-- Proves an idle connection (the LISTEN one) is still alive.
SELECT 1;
