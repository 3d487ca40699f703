-- A worker's own row in `workers`: registration, heartbeat, deregistration, and the probe of
-- an idle connection.

-- name: register_worker
-- Also the heartbeat: it renews the worker's lease (and re-registers a worker that a sweeper
-- removed while it was cut off).
INSERT INTO workers AS w (id, name, queues, concurrency, in_flight, heartbeat_at, lease_expires_at)
VALUES ($1, $2, $3, $4, $5, now(), now() + make_interval(secs => $6))
ON CONFLICT (id) DO UPDATE
SET in_flight = excluded.in_flight, heartbeat_at = excluded.heartbeat_at,
    lease_expires_at = excluded.lease_expires_at;

-- name: deregister_worker
DELETE FROM workers WHERE id = $1;

-- name: probe
-- Proves an idle connection (the LISTEN one) is still alive.
SELECT 1;
