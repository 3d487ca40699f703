"""The application layer: the `jobqueue` command line and the dev stack, composing `controller`
and `worker` (imports flow jobqueue -> controller -> worker, never back up)."""
