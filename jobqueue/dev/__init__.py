"""`jobqueue dev`: the local stack (embedded PostgreSQL, the API, autoscaled workers)."""
