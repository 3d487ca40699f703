"""`jobqueue jobs list|get|cancel|retry`, `jobqueue stats` and `jobqueue workers`: the queue
from a terminal, straight over one database connection (`jobqueue enqueue` is cli_enqueue's)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
import typer
from rich.table import Table

from jobqueue.cli_bulk import (
    BulkAll,
    BulkBefore,
    BulkQueue,
    BulkStatus,
    BulkType,
    JobIds,
    refuse_ids_with_filters,
    run_bulk,
)
from jobqueue.cli_common import (
    console,
    fail,
    load_settings,
    print_json,
    run_db,
)
from jobqueue.tables import count_text as _count
from jobqueue.tables import queues_table
from worker.ages import age_of
from worker.db import inspect
from worker.db.errors import JobNotFound, JobStateConflict
from worker.db.jobs import Job, cancel_job, get_job, retry_job
from worker.db.statuses import JOB_STATUSES

STATUS_STYLES = {
    "pending": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "dim",
    "blocked": "magenta",
}

jobs_app = typer.Typer(help="List, look up, cancel and retry jobs.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def check_new_job(job_type: str, payload: dict[str, Any]) -> str:
    """The API's own checks: a known job type, a payload PostgreSQL can store, and the job
    type's payload model (a typed task's). Returns the payload's JSON text, to be inserted as
    it is (each payload is serialised once). A refusal is one line naming the field."""
    from worker.errors import InvalidJob
    from worker.handlers import known_job_types, registry
    from worker.handlers.payload import InvalidPayload
    from worker.job_checks import check_job_type, check_payload

    settings = load_settings().api
    try:
        text = check_payload(payload, ("--payload",), settings.api_max_payload_bytes)
        check_job_type(
            job_type,
            ("JOB_TYPE",),
            known_job_types(settings.handler_modules),
            settings.allow_unknown_job_types,
            registry.missing_extras,
        )
        check = registry.payload_check(job_type)
        if check is not None:
            check(payload)
    except InvalidPayload as exc:
        fail(f"--payload: {job_type}: {exc.field}: {exc.problem}")
    except InvalidJob as exc:
        fail(str(exc))
    return text


# ---------------------------------------------------------------- jobs
def _status_list(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        if value not in JOB_STATUSES:
            raise typer.BadParameter(
                f"{value!r} is not one of {', '.join(JOB_STATUSES)}",
                param_hint="'--status'",
            )
    return values or None


def _status_text(status: str) -> str:
    return f"[{STATUS_STYLES.get(status, '')}]{status}[/]"


def _one_line(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@jobs_app.command("list")
def list_jobs(
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="Only these statuses (repeatable)."),
    ] = None,
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Only this queue.")] = None,
    job_type: Annotated[str | None, typer.Option("--type", "-t", help="Only this type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 20,
    before: Annotated[
        int | None, typer.Option(help="Jobs older than this id (the next page).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The newest jobs first."""
    statuses = _status_list(status)
    found = run_db(
        load_settings(),
        lambda conn: inspect.list_jobs(
            conn,
            statuses=statuses,
            queue_name=queue,
            job_type=job_type,
            before_id=before,
            limit=limit,
        ),
    )
    if as_json:
        print_json([job.to_dict() for job in found])
        return
    if not found:
        console.print("no jobs")
        return
    now = datetime.now(UTC)
    table = Table("ID", "QUEUE", "TYPE", "STATUS", "PRI", "TRIES", "AGE", "LAST ERROR")
    for job in found:
        table.add_row(
            str(job.id),
            job.queue_name,
            job.job_type,
            _status_text(job.status),
            str(job.priority),
            f"{job.attempts}/{job.max_tries}",
            age_of(job.created_at, now),
            _one_line(job.last_error, 40),
        )
    console.print(table)
    if len(found) == limit:
        console.print(f"[dim]more: --before {found[-1].id}[/]")


async def _get(conn: asyncpg.Connection, job_id: int) -> Job:
    job = await get_job(conn, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


@jobs_app.command("get")
def get(
    job_id: Annotated[int, typer.Argument(min=1, help="The job's id.")],
    as_json: JsonFlag = False,
) -> None:
    """One job, every field."""
    try:
        job = run_db(load_settings(), lambda conn: _get(conn, job_id))
    except JobNotFound as exc:
        fail(str(exc))
    if as_json:
        print_json(job.to_dict())
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in job.to_dict().items():
        if key == "status":
            table.add_row(key, _status_text(str(value)))
        elif isinstance(value, dict | list):
            table.add_row(key, _compact_json(value))
        else:
            table.add_row(key, "-" if value is None else str(value))
    console.print(table)


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _transition(
    job_ids: list[int], change: Callable[[asyncpg.Connection, int], Awaitable[Job]]
) -> None:
    async def apply(conn: asyncpg.Connection) -> list[str]:
        problems = []
        for job_id in job_ids:
            try:
                job = await change(conn, job_id)
            except (JobNotFound, JobStateConflict) as exc:
                problems.append(str(exc))
                continue
            console.print(f"job {job.id} is now {_status_text(job.status)}")
        return problems

    problems = run_db(load_settings(), apply)
    if problems:
        fail("; ".join(problems))


def _by_ids_or_filters(
    action: Literal["cancel", "retry"], change: Callable[[asyncpg.Connection, int], Awaitable[Job]]
) -> Callable[..., None]:
    def command(
        job_ids: JobIds = None,
        status: BulkStatus = None,
        queue: BulkQueue = None,
        job_type: BulkType = None,
        created_before: BulkBefore = None,
        every: BulkAll = False,
    ) -> None:
        if job_ids:
            refuse_ids_with_filters(status, queue, job_type, created_before, every)
            _transition(job_ids, change)
        else:
            run_bulk(action, status, queue, job_type, created_before, every)

    return command


jobs_app.command(
    "cancel",
    help="Cancel pending or running jobs (a running one's worker stops its handler): by id, "
    "or every job that matches the filters, e.g. jobqueue jobs cancel --status pending --queue X.",
)(_by_ids_or_filters("cancel", cancel_job))
jobs_app.command(
    "retry",
    help="Run failed or cancelled jobs again, now: by id, or every job that matches the "
    "filters, e.g. jobqueue jobs retry --status failed --queue X.",
)(_by_ids_or_filters("retry", retry_job))


# ---------------------------------------------------------------- stats, workers
def stats(as_json: JsonFlag = False) -> None:
    """Jobs per status, and each queue's depth."""
    overview = run_db(load_settings(), inspect.stats_overview)
    if as_json:
        print_json(asdict(overview))
        return
    totals = Table("STATUS", "JOBS", title="jobs")
    for status, count in overview.by_status.items():
        totals.add_row(_status_text(status), _count(count))
    totals.add_row("[bold]total[/]", _count(overview.total))
    totals.add_row("done in the last minute", _count(overview.done_last_minute))
    console.print(totals)
    console.print(queues_table(overview.queues))


def workers(as_json: JsonFlag = False) -> None:
    """Live worker processes (their lease is fresh), with what they run."""
    found = run_db(load_settings(), inspect.live_workers)
    if as_json:
        print_json([asdict(w) for w in found])
        return
    if not found:
        console.print("no live workers")
        return
    console.print(workers_table(found))


def workers_table(found: list[inspect.LiveWorker]) -> Table:
    now = datetime.now(UTC)
    table = Table("NAME", "ID", "QUEUES", "IN FLIGHT", "STARTED", "HEARTBEAT", "RUNNING JOBS")
    for worker in found:
        table.add_row(
            worker.name,
            worker.id[:8],
            ",".join(worker.queues),
            f"{worker.in_flight}/{worker.concurrency}",
            age_of(worker.started_at, now),
            age_of(worker.heartbeat_at, now),
            " ".join(str(job["id"]) for job in worker.jobs[:10]),
        )
    return table
