-- Workflows: jobs with dependencies, batches with a callback (the rules are in the functions of
-- migrations/0007_workflows.sql, which batch_plan applies to a batch's items before they are
-- inserted; these statements call them and read what they wrote).

-- name: dependencies_lock_status
-- params: $1 ids, $2 field_path
-- $1 every job id the batch's items depend on, locked and flagged; $2 the batch's field path
-- for errors. Each locked job's status comes back (batch_plan needs them).
SELECT id, status::text FROM jobqueue_lock_dependencies($1::bigint[], $2);

-- name: jobs_new_ids
-- params: $1 how_many
-- $1 ids from the jobs' own sequence, taken before the insert so that items can name the ids
-- of earlier items (in their edges and in a cancelled item's last_error).
SELECT nextval(pg_get_serial_sequence('jobs', 'id')) FROM generate_series(1, $1::integer);

-- name: dependencies_insert
-- params: $1 depends_on_ids, $2 job_ids, $3 run_on_failure
-- The new jobs' edges: $1 what each waits for, $2 the waiting job, $3 its run_on_failure.
INSERT INTO job_dependencies (depends_on_id, job_id, run_on_failure)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::boolean[]);

-- name: batches_insert
-- params: $1 on_complete
INSERT INTO batches (on_complete) VALUES ($1::text::jsonb) RETURNING id;

-- name: batches_close
-- params: $1 batch_id
-- Once its jobs are in: how many there are, and how many were born finished (cancelled by a
-- dependency that had failed). A batch finished already gets its callback now.
WITH counted AS (
    SELECT count(*)::integer AS total,
           count(*) FILTER (WHERE status::text IN ('completed', 'failed', 'cancelled'))::integer
               AS finished
    FROM jobs WHERE batch_id = $1
),
closed AS (
    UPDATE batches AS b SET total = c.total, finished = c.finished
    FROM counted AS c WHERE b.id = $1
    RETURNING b.id, b.total, b.finished
)
SELECT CASE WHEN finished >= total THEN jobqueue_batch_callback(id) END AS callback_job_id
FROM closed;

-- name: jobs_status_brief
-- params: $1 ids
SELECT id, status::text AS status, queue_name FROM jobs WHERE id = ANY ($1::bigint[]);

-- name: batches_get
-- params: $1 batch_id
SELECT b.id, b.total, b.finished, b.callback_job_id, b.created_at, b.completed_at,
       (SELECT coalesce(jsonb_object_agg(c.status, c.n), '{}'::jsonb)::text
        FROM (SELECT j.status::text AS status, count(*) AS n
              FROM jobs AS j WHERE j.batch_id = b.id GROUP BY j.status) AS c) AS counts
FROM batches AS b WHERE b.id = $1;

-- name: dependencies_of_job
-- params: $1 job_id
SELECT depends_on_id FROM job_dependencies WHERE job_id = $1 ORDER BY depends_on_id;

-- name: jobs_ids_by_keys
-- params: $1 keys
-- The jobs that hold some of a batch's idempotency keys already: such an item is that job.
SELECT idempotency_key, id FROM jobs WHERE idempotency_key = ANY ($1::text[]);

-- name: jobs_ids_by_unique_keys
-- params: $1 unique_keys
-- The active jobs that hold some of a batch's unique keys: such an item is that job.
SELECT unique_key, id FROM jobs
WHERE unique_key = ANY ($1::text[]) AND status IN ('pending', 'running', 'blocked');
