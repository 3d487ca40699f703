-- Periodic jobs: the schedules API and the scheduler service's pass. Every time compared here
-- is the database's now(), so that processes on machines with skewed clocks agree.

-- name: schedules_upsert
-- params: $1 name, $2 cron, $3 every_seconds, $4 timezone, $5 job, $6 catch_up,
--         $7 next_run_at, $8 source
-- Create, or replace the definition of, a schedule; a replaced one keeps its next_run_at
-- (re-posting the same schedule moves no tick) unless its timing changed ($7: the next tick
-- of the new timing). Returns whether it was created. $8: the source ('api', 'cli' or 'code').
INSERT INTO schedules AS s (name, cron, every_seconds, timezone, job, catch_up, next_run_at,
                            source)
VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $8)
ON CONFLICT (name) DO UPDATE
SET cron = excluded.cron, every_seconds = excluded.every_seconds,
    timezone = excluded.timezone, job = excluded.job, catch_up = excluded.catch_up,
    source = excluded.source,
    next_run_at = CASE
        WHEN (s.cron, s.every_seconds, s.timezone)
             IS NOT DISTINCT FROM (excluded.cron, excluded.every_seconds, excluded.timezone)
        THEN s.next_run_at ELSE excluded.next_run_at END,
    updated_at = now()
RETURNING (xmax = 0) AS created;

-- name: schedules_upsert_from_code
-- params: $1 name, $2 cron, $3 every_seconds, $4 timezone, $5 job, $6 catch_up,
--         $7 next_run_at
-- What `@registry.periodic` declares, written by every worker at start: a schedule someone made
-- through the API or CLI under the same name is left alone (no row comes back then); the
-- paused flag is the operator's and is kept.
INSERT INTO schedules AS s (name, cron, every_seconds, timezone, job, catch_up, next_run_at,
                            source)
VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, 'code')
ON CONFLICT (name) DO UPDATE
SET cron = excluded.cron, every_seconds = excluded.every_seconds,
    timezone = excluded.timezone, job = excluded.job, catch_up = excluded.catch_up,
    next_run_at = CASE
        WHEN (s.cron, s.every_seconds, s.timezone)
             IS NOT DISTINCT FROM (excluded.cron, excluded.every_seconds, excluded.timezone)
        THEN s.next_run_at ELSE excluded.next_run_at END,
    updated_at = now()
WHERE s.source = 'code'
  AND (s.cron, s.every_seconds, s.timezone, s.job, s.catch_up)
      IS DISTINCT FROM (excluded.cron, excluded.every_seconds, excluded.timezone, excluded.job,
                        excluded.catch_up)
RETURNING name;

-- name: schedules_list
-- params: $1 name
-- With the last job's status; a pruned last job shows no status.
SELECT s.*, j.status::text AS last_job_status
FROM schedules AS s
LEFT JOIN jobs AS j ON j.id = s.last_job_id
WHERE ($1::text IS NULL OR s.name = $1::text)
ORDER BY s.name;

-- name: schedules_delete
-- params: $1 name
DELETE FROM schedules WHERE name = $1 RETURNING name;

-- name: schedules_set_paused
-- params: $1 name, $2 paused, $3 next_run_at
-- $3: the next tick after now, for a resume: ticks that fell in the pause are not run.
UPDATE schedules
SET paused = $2, next_run_at = CASE WHEN $2 THEN next_run_at ELSE $3 END, updated_at = now()
WHERE name = $1
RETURNING name;

-- name: schedules_lock_due
-- params: $1 max_rows
-- One pass: the due, unpaused schedules that no other process is firing right now, locked
-- until this transaction ends (schedules_due_idx serves it). Other processes skip them: each
-- tick is enqueued by exactly one transaction, which also moves next_run_at past it.
SELECT name, cron, every_seconds, timezone, job::text AS job, catch_up, next_run_at,
       now() AS now
FROM schedules
WHERE NOT paused AND next_run_at <= now()
ORDER BY next_run_at
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: schedules_record_runs
-- params: $1 names, $2 next_run_ats, $3 last_run_ats, $4 last_job_ids
-- Per schedule: the next tick, and the last tick enqueued and its job (null: none this pass).
UPDATE schedules AS s
SET next_run_at = r.next_run_at, last_run_at = coalesce(r.last_run_at, s.last_run_at),
    last_job_id = coalesce(r.last_job_id, s.last_job_id), updated_at = now()
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::bigint[])
    AS r(name, next_run_at, last_run_at, last_job_id)
WHERE s.name = r.name;

-- name: schedules_next_due
-- When the scheduler should look again, in seconds from now (null: no unpaused schedule).
SELECT extract(epoch FROM min(next_run_at) - now())::float8
FROM schedules
WHERE NOT paused;

-- name: schedules_count_other
-- params: $1 name
-- How many schedules there are besides the one named $1 (the API's cap on their number).
SELECT count(*) FROM schedules WHERE name <> $1;
