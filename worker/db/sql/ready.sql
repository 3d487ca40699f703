-- The ready ring (migration 0017, docs/storage.md): where claims find their work. Entries are
-- written by triggers on `jobs` and taken by claims.sql's claim_jobs; this is its maintenance.

-- name: job_ready_turn
-- params: $1 every_ms, $2 move
-- Turns the ring when its current slot has been current for $1 milliseconds (0: now), tidies
-- the oldest slot (up to $2 entries moved or dropped), and truncates at most one empty slot.
-- The slot truncated, -1 when none was, NULL when another caller was doing it.
SELECT jobqueue_ready_turn($1::integer, $2::integer);
