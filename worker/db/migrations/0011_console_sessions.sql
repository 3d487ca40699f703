-- The console's sessions, so that one expires and a logout ends it on every API replica.
-- Additive: the previous release never reads this table, and its own stateless cookies keep
-- working until it is replaced. The cookie holds a random secret; a row holds only its
-- SHA-256 (a copy of the table opens no session), the scope the token granted, and a mark of
-- that token (an HMAC of it), so that a new token ends the sessions the old one opened.
CREATE TABLE IF NOT EXISTS console_sessions (
    id         text PRIMARY KEY,
    scope      text NOT NULL,
    token_mark text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT console_sessions_scope CHECK (scope IN ('admin', 'read'))
);

-- Expired sessions are deleted at each login, found by this range.
CREATE INDEX IF NOT EXISTS console_sessions_expires_idx ON console_sessions (expires_at);
