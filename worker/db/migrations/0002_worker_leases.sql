-- A worker's heartbeat renews its own lease, so that heartbeats never write the hot job rows:
-- a running job's lease stays alive while its worker's lease does.
ALTER TABLE workers ADD COLUMN IF NOT EXISTS lease_expires_at timestamptz NOT NULL DEFAULT now();
