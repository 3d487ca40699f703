-- The controller's record of its scaling decisions, for the console.

-- name: insert_scaling_decisions
-- params: $1 namespace, $2 deployment, $3 from_replicas, $4 to_replicas, $5 reason,
--         $6 detail
INSERT INTO scaling_decisions (namespace, deployment, from_replicas, to_replicas, reason, detail)
VALUES ($1, $2, $3, $4, $5, $6::jsonb);

-- name: delete_scaling_decisions_older
-- params: $1 keep_seconds
-- $1 seconds of history to keep. Through scaling_decisions_decided_at_idx.
DELETE FROM scaling_decisions
WHERE decided_at < now() - make_interval(secs => $1);
