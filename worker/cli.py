"""The `jobqueue` command line. Each command imports its module lazily, so `jobqueue --help`
stays fast and a missing optional part never breaks the others."""

from __future__ import annotations

import asyncio
import sys

import typer

from worker.db.connection import DatabaseUnavailable
from worker.settings import get_settings

app = typer.Typer(
    help="Job-Queue: a PostgreSQL job queue with a Kubernetes autoscaler.", no_args_is_help=True
)


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def migrate() -> None:
    """Create or upgrade the schema (idempotent, safe to run from several pods at once)."""
    from worker.db.migrate import migrate as run_migrate

    try:
        applied = asyncio.run(run_migrate(get_settings().dsn))
    except DatabaseUnavailable as exc:
        fail(str(exc))
    typer.echo(f"applied migrations: {applied}" if applied else "schema is up to date")


@app.command()
def worker() -> None:
    """Run a worker process (MAX_CONCURRENT_JOBS slots over WORKER_QUEUES)."""
    from worker.runtime.main import run_worker

    try:
        code = run_worker(get_settings())
    except DatabaseUnavailable as exc:
        fail(str(exc))
    raise typer.Exit(code)


@app.command()
def api() -> None:
    """Serve the REST API (port 8001 by default)."""
    from worker.api.server import serve

    serve(get_settings())


@app.command()
def controller() -> None:
    """Run the autoscaling controller (a kopf operator, no CRDs)."""
    from controller.main import run_controller

    raise typer.Exit(run_controller(get_settings()))


def main() -> None:
    try:
        app()
    except DatabaseUnavailable as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
