"""The `jobqueue` command line. Each command imports its module lazily, so `jobqueue --help`
stays fast and a missing optional part never breaks the others."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from jobqueue import cli_enqueue, cli_jobs, cli_limits, cli_queues, cli_schedules
from jobqueue.cli_common import fail, load_settings, print_error, require_extra
from worker import logs
from worker.db.connection import DatabaseUnavailable
from worker.logs import LogFormat
from worker.settings import get_settings
from worker.tracing import TracingUnavailable

app = typer.Typer(
    help="Job-Queue: a PostgreSQL job queue with a Kubernetes autoscaler.",
    no_args_is_help=True,
    # with DEBUG=true the plain traceback goes to the log, where it can be copied whole
    pretty_exceptions_enable=False,
)
app.command()(cli_enqueue.enqueue)
app.add_typer(cli_jobs.jobs_app, name="jobs")
cli_queues.queues_app.command("set")(cli_limits.set_limits)  # flow control's limits
app.add_typer(cli_queues.queues_app, name="queues")
app.add_typer(cli_schedules.schedules_app, name="schedules")
app.command()(cli_jobs.stats)
app.command()(cli_jobs.workers)


@app.command()
def migrate() -> None:
    """Create or upgrade the schema (idempotent, safe to run from several pods at once), and
    grant JOBQUEUE_DB_RUNTIME_ROLE and JOBQUEUE_DB_READONLY_ROLE their rights."""
    from worker.db.grants import grant
    from worker.db.migrate import migrate as run_migrate
    from worker.db.migrate_steps import LockPolicy, MigrationBlocked

    settings = load_settings()
    policy = LockPolicy(settings.migration_lock_timeout, settings.migration_retries)

    try:
        applied = asyncio.run(run_migrate(settings.dsn, policy))
    except MigrationBlocked as exc:
        fail(str(exc))
    typer.echo(f"applied migrations: {applied}" if applied else "schema is up to date")
    granted = asyncio.run(grant(settings.dsn, settings.db_runtime_role, settings.db_readonly_role))
    if granted:
        typer.echo(f"granted rights to: {', '.join(granted)}")


@app.command()
def worker() -> None:
    """Run a worker process (MAX_CONCURRENT_JOBS slots over WORKER_QUEUES)."""
    from worker.runtime.main import run_worker

    settings = load_settings()
    logs.configure(settings.debug, settings.log_format)
    raise typer.Exit(run_worker(settings.worker, settings.dsn))


@app.command()
def api() -> None:
    """Serve the REST API (port 8001 by default)."""
    require_extra("fastapi", "api", "`jobqueue api`")
    from worker.api.server import UnsafeApiSettings, serve

    settings = load_settings()
    logs.configure(settings.debug, settings.log_format)
    from worker.handlers.base import UnknownDisabledHandler

    try:
        serve(settings.api, settings.dsn)
    except (UnsafeApiSettings, UnknownDisabledHandler) as exc:
        fail(str(exc), 2)


@app.command()
def controller() -> None:
    """Run the autoscaling controller (a kopf operator, no CRDs)."""
    require_extra("kopf", "controller", "`jobqueue controller`")
    from controller.main import run_controller

    settings = load_settings()
    logs.configure(settings.debug, settings.log_format, default="json")
    raise typer.Exit(run_controller(settings.controller, settings.dsn))


@app.command()
def dev(
    port: Annotated[int, typer.Option(min=1, max=65535, help="The API's port.")] = 8001,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            envvar="JOBQUEUE_DEV_DATA_DIR",
            help="Where PostgreSQL's data and the logs live (default: a per-user cache dir).",
        ),
    ] = None,
    min_workers: Annotated[int, typer.Option(min=0, help="Fewest worker processes.")] = 0,
    max_workers: Annotated[int, typer.Option(min=1, help="Most worker processes.")] = 4,
    jobs_per_worker: Annotated[
        int, typer.Option(min=1, help="Target of (ready + running) jobs per worker.")
    ] = 10,
    scale_down_delay: Annotated[
        float, typer.Option(min=0, help="Seconds demand must stay lower before scaling down.")
    ] = 10.0,
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues the local workers serve and scale on.")
    ] = "default",
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Plain log lines, no live view.")] = False,
    handlers: Annotated[
        Path | None,
        typer.Option(
            help="Your handlers: a module file, a package, or a folder of modules "
            "(added to JOBQUEUE_HANDLER_MODULES for the API and the workers).",
        ),
    ] = None,
) -> None:
    """The whole system on this machine: embedded PostgreSQL, the API, autoscaled workers."""
    for module in ("fastapi", "httpx", "platformdirs"):
        require_extra(module, "local", "`jobqueue dev`")
    from jobqueue.dev.stack import DevOptions, run_dev

    if min_workers > max_workers:
        raise typer.BadParameter("must not exceed --max-workers", param_hint="'--min-workers'")
    options = DevOptions(
        port=port,
        data_dir=data_dir,
        min_workers=min_workers,
        max_workers=max_workers,
        jobs_per_worker=jobs_per_worker,
        scale_down_delay=scale_down_delay,
        queues=[q.strip() for q in queues.split(",") if q.strip()] or ["default"],
        ui=not no_ui,
        handlers=handlers,
    )
    raise typer.Exit(run_dev(load_settings(), options))


def _logging_settings() -> tuple[bool, LogFormat | None]:
    try:
        settings = get_settings()
    except ValidationError:  # the command itself reports bad settings
        return False, None
    return settings.debug, settings.log_format


def main() -> None:
    debug, log_format = _logging_settings()
    # the service commands configure their own level when they start
    logs.configure(debug, log_format, quiet=True)
    # one place for every command: an unreachable database is a message, not a traceback
    try:
        app()
    except (DatabaseUnavailable, TracingUnavailable) as exc:
        print_error(str(exc))
        sys.exit(1)
    except Exception as exc:
        # a bug or an unforeseen fault: one line for users, the traceback only when debugging
        if debug:
            raise
        print_error(f"unexpected {type(exc).__name__}: {exc} (set DEBUG=true to log the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
