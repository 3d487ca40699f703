-- What a list of jobs adds to its rows, so that a job reads the same in a list as alone.

-- name: dependencies_of_jobs
-- params: $1 job_ids
-- $1 job ids: each one's dependencies, in id order (job_dependencies_job_idx serves it).
SELECT job_id, array_agg(depends_on_id ORDER BY depends_on_id) AS depends_on
FROM job_dependencies
WHERE job_id = ANY ($1::bigint[])
GROUP BY job_id;
