-- The demand the controller scales on, per queue, for the API's /metrics (a zero-filled gauge
-- that KEDA's prometheus scaler, or a dashboard, can use). The function is migration 0012's.

-- name: select_queue_demand
-- params: $1 cap
-- $1 the count cap per queue. Every queue the database knows of, empty ones with zeros.
SELECT queue_name, ready, running, paused FROM jobqueue_queue_demand(NULL, $1);
