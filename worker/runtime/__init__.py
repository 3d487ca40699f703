"""The worker process: claim loop, handlers, acknowledgements, heartbeat, sweeps, metrics."""
