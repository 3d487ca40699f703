"""`jobqueue jobs list|get|cancel|retry`, `jobqueue stats` and `jobqueue workers`: the queue
from a terminal, straight over one database connection (`jobqueue enqueue` is cli_enqueue's)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Literal

import asyncpg
import typer
from rich.markup import escape
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
from jobqueue.cli_job_detail import STATUS_STYLES, fetch_detail, render_detail
from jobqueue.tables import count_text as _count
from jobqueue.tables import queues_table
from worker.ages import age_of
from worker.db import inspect
from worker.db.errors import JobNotFound, JobStateConflict
from worker.db.job_lists import fill_dependencies
from worker.db.jobs import Job, cancel_job, retry_job
from worker.db.statuses import JOB_STATUSES

jobs_app = typer.Typer(help="List, look up, cancel and retry jobs.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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

    async def read(conn: asyncpg.Connection) -> list[Job]:
        jobs = await inspect.list_jobs(
            conn,
            statuses=statuses,
            queue_name=queue,
            job_type=job_type,
            before_id=before,
            limit=limit,
        )
        await fill_dependencies(conn, jobs)  # as `jobs get` shows them
        return jobs

    found = run_db(load_settings(), read)
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
            escape(job.queue_name),
            escape(job.job_type),
            _status_text(job.status),
            str(job.priority),
            f"{job.attempts}/{job.max_tries}",
            age_of(job.created_at, now),
            escape(_one_line(job.last_error, 40)),
        )
    console.print(table)
    if len(found) == limit:
        console.print(f"[dim]more: --before {found[-1].id}[/]")


@jobs_app.command("get")
def get(
    job_id: Annotated[int, typer.Argument(min=1, help="The job's id.")],
    as_json: JsonFlag = False,
) -> None:
    """One job: every field, each failed attempt's error and traceback, and its log lines."""
    try:
        detail = run_db(load_settings(), lambda conn: fetch_detail(conn, job_id))
    except JobNotFound as exc:
        fail(str(exc))
    if as_json:
        print_json(detail)
        return
    render_detail(detail)


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
            escape(worker.name),
            worker.id[:8],
            escape(",".join(worker.queues)),
            f"{worker.in_flight}/{worker.concurrency}",
            age_of(worker.started_at, now),
            age_of(worker.heartbeat_at, now),
            " ".join(str(job["id"]) for job in worker.jobs[:10]),
        )
    return table
