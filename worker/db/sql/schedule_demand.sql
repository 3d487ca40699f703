-- Due schedules as demand: on a pool at zero no worker runs the scheduler, so a schedule whose
-- tick has come would wait forever. The autoscalers (the controller, `jobqueue dev`) count
-- them, and start one worker, whose scheduler then enqueues the tick's job.

-- name: count_due_schedules
-- params: $1 queues, $2 cap
-- $1 queues (unpaused), $2 cap. Unpaused schedules whose next tick has come and whose job goes
-- to one of the queues (a spec without queue_name goes to 'default'); schedules_due_idx serves
-- the range, and the cap bounds the cost.
SELECT count(*)::int
FROM (
    SELECT 1
    FROM schedules
    WHERE NOT paused AND next_run_at <= now()
      AND coalesce(job ->> 'queue_name', 'default') = ANY ($1::text[])
    LIMIT $2
) AS due;
