"""`jobqueue enqueue`: jobs onto a queue, in bulk with --count, waiting for other jobs with
--depends-on (docs/workflows.md), and waited for with --wait. Jobs with dependencies go in
through the same batch statements as the API's (worker.db.workflows), so the rules are the
same; a wait is woken by the same NOTIFY as GET /jobs/{id}?wait_seconds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jobqueue.cli_checks import checked_job
from jobqueue.cli_common import console, fail, load_settings, parse_json_object, print_json, run_db
from jobqueue.cli_jobs import JsonFlag
from worker.db.jobs import Job, NewJob, enqueue_many, get_job
from worker.db.waits import JobWaiters
from worker.db.workflows import MissingDependency, WorkflowItem, enqueue_batch

ENQUEUE_CHUNK = 1000  # jobs per INSERT statement (one transaction each) for --count
TERMINAL = ("completed", "failed", "cancelled")
MAX_WAIT_SECONDS = 24 * 3600.0  # a terminal's patience, not the API's 60 s request cap


class DependencyMissing(Exception):
    """--depends-on names a job that does not exist."""


async def enqueue_dependent(
    conn: asyncpg.Connection,
    job: NewJob,
    depends_on: Sequence[int],
    run_on_failure: bool,
    count: int,
) -> list[tuple[int, str, bool]]:
    """`count` copies of the job, each waiting for `depends_on`, in one transaction (a fan-out
    when count > 1): per copy (id, status, created)."""
    items = [WorkflowItem(job, list(depends_on), run_on_failure=run_on_failure)] * count
    try:
        async with conn.transaction():
            return (await enqueue_batch(conn, items)).jobs
    except MissingDependency as exc:
        raise DependencyMissing(f"--depends-on: no job has id {exc.id}") from None


async def wait_for(conn: asyncpg.Connection, dsn: str, job_id: int, seconds: float) -> Job:
    """The job once it is terminal, or as it is when `seconds` are up."""
    waiters = JobWaiters(dsn, {"server_settings": {"application_name": "jobqueue-cli"}})
    try:
        job = await waiters.wait(conn, job_id, seconds)
    finally:
        await waiters.close()
    if job is None:  # pruned meanwhile: only with a retention near zero
        job = await get_job(conn, job_id)
    if job is None:
        raise LookupError(f"job {job_id} is gone (pruned by the retention)")
    return job


def enqueue(
    job_type: Annotated[
        str, typer.Argument(metavar="JOB_TYPE", help="The handler to run, e.g. emails or noop.")
    ],
    payload: Annotated[
        str, typer.Option(metavar="JSON", help="The job's payload, a JSON object.")
    ] = "{}",
    queue: Annotated[
        str, typer.Option("--queue", "-q", help="The queue to put it on.")
    ] = "default",
    priority: Annotated[int, typer.Option("--priority", "-p", help="Higher runs first.")] = 0,
    max_tries: Annotated[int, typer.Option(min=1, help="Attempts before it fails for good.")] = 3,
    delay: Annotated[
        float | None, typer.Option(min=0, help="Run no sooner than this many seconds from now.")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Enqueue once: the same key returns the existing job.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.001, metavar="SECONDS", help="Fail an attempt that runs longer."),
    ] = None,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, help="Enqueue this many copies, in bulk.")
    ] = 1,
    run_at: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
            help="Run no sooner than this time (UTC unless it has an offset).",
        ),
    ] = None,
    concurrency_key: Annotated[
        str | None, typer.Option(help="Held by the queue's per-key limit, e.g. a tenant id.")
    ] = None,
    unique_key: Annotated[
        str | None, typer.Option(help="At most one active job per key: else that job is shown.")
    ] = None,
    depends_on: Annotated[
        list[int] | None,
        typer.Option("--depends-on", metavar="ID", help="Wait for this job (repeatable)."),
    ] = None,
    run_on_failure: Annotated[
        bool, typer.Option(help="With --depends-on: run even if a dependency fails.")
    ] = False,
    wait: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            max=MAX_WAIT_SECONDS,
            metavar="SECONDS",
            help="Then wait up to this long for the job to finish; exit 1 unless it completed.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Put jobs on a queue. Example: jobqueue enqueue emails --payload '{"to": "a@b.c"}'."""
    for flag, value in (("'--idempotency-key'", idempotency_key), ("'--unique-key'", unique_key)):
        if value is not None and count > 1:
            raise typer.BadParameter("one key names one job; drop --count", param_hint=flag)
    if wait is not None and count > 1:
        raise typer.BadParameter("waits for one job; drop --count", param_hint="'--wait'")
    if run_on_failure and not depends_on:
        raise typer.BadParameter("needs --depends-on", param_hint="'--run-on-failure'")
    new_job = checked_job(
        job_type,
        parse_json_object(payload, "'--payload'"),
        queue_name=queue,
        priority=priority,
        max_tries=max_tries,
        delay_seconds=delay,
        run_at=run_at,
        timeout_seconds=timeout,
        idempotency_key=idempotency_key,
        concurrency_key=concurrency_key,
        unique_key=unique_key,
        depends_on=depends_on or None,
        run_on_failure=run_on_failure,
    )
    settings = load_settings()
    if depends_on and count > 1:
        jobs = run_db(
            settings,
            lambda conn: _enqueue_dependent(conn, new_job, depends_on, run_on_failure, count),
        )
        first, last = jobs[0][0], jobs[-1][0]
    elif count == 1:
        if depends_on:
            job, created = run_db(
                settings,
                lambda conn: _enqueue_one_dependent(conn, new_job, depends_on, run_on_failure),
            )
        else:
            job, created = run_db(settings, lambda conn: _enqueue_one(conn, new_job))
        if as_json and wait is None:
            print_json({**job.to_dict(), "created": created})
        elif not as_json:
            verb = "enqueued" if created else "already enqueued (same key):"
            waits = (
                f", {job.status} until {', '.join(map(str, depends_on))} finish"
                if job.status == "blocked" and depends_on
                else ""
            )
            what = escape(f"({job.job_type} on queue {job.queue_name}{waits})")
            console.print(f"{verb} job [bold]{job.id}[/] {what}")
        if wait is not None:
            _wait_and_report(settings, job.id, wait, as_json)
        return
    else:
        first, last = run_db(settings, lambda conn: _enqueue_bulk(conn, new_job, count))
    if as_json:
        print_json({"count": count, "first_id": first, "last_id": last})
    else:
        console.print(
            f"enqueued {count} {escape(job_type)} jobs on queue {queue} (ids {first}..{last})"
        )


async def _enqueue_one(conn: asyncpg.Connection, job: NewJob) -> tuple[Job, bool]:
    (pair,) = await enqueue_many(conn, [job])
    return pair


async def _enqueue_dependent(
    conn: asyncpg.Connection, job: NewJob, depends_on: list[int], on_failure: bool, count: int
) -> list[tuple[int, str, bool]]:
    try:
        return await enqueue_dependent(conn, job, depends_on, on_failure, count)
    except DependencyMissing as exc:
        fail(str(exc))


async def _enqueue_one_dependent(
    conn: asyncpg.Connection, job: NewJob, depends_on: list[int], on_failure: bool
) -> tuple[Job, bool]:
    ((job_id, _, created),) = await _enqueue_dependent(conn, job, depends_on, on_failure, 1)
    found = await get_job(conn, job_id)
    if found is None:
        fail(f"job {job_id} is gone (pruned by the retention)")
    return found, created


def _wait_and_report(settings: Any, job_id: int, seconds: float, as_json: bool) -> None:
    """Wait for the job, print it, and exit 1 unless it completed."""
    try:
        job = run_db(settings, lambda conn: wait_for(conn, settings.dsn, job_id, seconds))
    except LookupError as exc:  # pruned while waited for: a message, not a traceback
        fail(str(exc))
    if as_json:
        print_json(job.to_dict())
    else:
        console.print(f"job [bold]{job.id}[/] {job.status}")
    if job.status != "completed":
        if not as_json:
            left = " after the wait" if job.status not in TERMINAL else ""
            console.print(f"[red]job {job.id} is {job.status}{left}[/]")
        raise typer.Exit(1)


async def _enqueue_bulk(conn: asyncpg.Connection, job: NewJob, count: int) -> tuple[int, int]:
    first = last = 0
    columns = (
        TextColumn("enqueueing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("enqueue", total=count)
        done = 0
        while done < count:
            size = min(ENQUEUE_CHUNK, count - done)
            pairs = await enqueue_many(conn, [job] * size)
            first = first or pairs[0][0].id
            last = pairs[-1][0].id
            done += size
            progress.update(task, completed=done)
    return first, last
