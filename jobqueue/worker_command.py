"""`jobqueue worker`, started without the rest of the command line: the worker's start is a
pod's cold start, so it imports only what a worker needs. No typer, Rich or pydantic models
beyond the settings, no FastAPI, no kopf: jobqueue.entry sends a bare `jobqueue worker` here,
and anything else (`jobqueue worker --help`, every other command) through jobqueue.cli.

tests/unit/test_worker_imports.py keeps it so: it lists the modules this path may not import.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError


def settings_problems(exc: ValidationError) -> str:
    """A settings error as one line, each problem named by its field."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
        for error in exc.errors()
    )


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 1


def main() -> int:
    from worker import logs
    from worker.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        return _error(f"invalid settings from the environment: {settings_problems(exc)}")
    logs.configure(settings.debug, settings.log_format)
    from worker.db.connection import DatabaseUnavailable
    from worker.runtime.main import run_worker
    from worker.tracing import TracingUnavailable

    try:
        return run_worker(settings.worker, settings.dsn)
    except (DatabaseUnavailable, TracingUnavailable) as exc:
        return _error(str(exc))
    except Exception as exc:
        # as jobqueue.cli does: one line for users, the traceback only when debugging
        if settings.debug:
            raise
        return _error(
            f"unexpected {type(exc).__name__}: {exc} (set DEBUG=true to log the traceback)"
        )
