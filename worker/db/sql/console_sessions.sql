-- The console's sessions (migration 0011): $1 is always the SHA-256 of a cookie's secret.

-- name: insert_session
-- params: $1 key, $2 scope, $3 token_mark, $4 seconds
-- A new session of scope $2 for token mark $3, for $4 seconds; the expired ones go with it.
WITH expired AS (
    DELETE FROM console_sessions WHERE expires_at < now()
)
INSERT INTO console_sessions (id, scope, token_mark, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4));

-- name: select_session
-- params: $1 key
SELECT scope, token_mark FROM console_sessions WHERE id = $1 AND expires_at > now();

-- name: delete_session
-- params: $1 key
DELETE FROM console_sessions WHERE id = $1;
