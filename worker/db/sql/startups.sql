-- Cold starts: each worker's start, phase by phase (workers.startup, migration 0012), written
-- once by the worker and read by the controller to time a scale-up from zero.

-- name: update_worker_startup
-- params: $1 worker_id, $2 phases
-- $1 the worker, $2 its phases: {"processStarted": epoch seconds, "imported": ..., ...}. The
-- NOTIFY (on worker.db.startups.WORKER_STARTED_CHANNEL, with the worker's name) tells the
-- controller at once that a first replica's worker is up (controller.first_replica).
UPDATE workers SET startup = $2::jsonb WHERE id = $1
RETURNING pg_notify('jobqueue_worker_started', name);

-- name: select_first_startup
-- params: $1 name_pattern, $2 registered_after
-- $1 the LIKE pattern of one Deployment's workers' names, $2 the earliest registration that
-- counts (epoch seconds). The phases of the worker that claimed first, if one has.
SELECT w.name, w.startup
FROM workers AS w
WHERE w.name LIKE $1
      AND w.startup IS NOT NULL
      AND (w.startup ->> 'registered')::float8 >= $2
ORDER BY (w.startup ->> 'firstClaim')::float8
LIMIT 1;
