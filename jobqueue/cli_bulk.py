"""`jobqueue jobs retry|cancel` by filter: every matching job, in batches of short transactions
(worker.db.bulk), with a running count."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from jobqueue.cli_common import console, load_settings, run_db
from worker.db import bulk
from worker.db.jobs import Executor

JobIds = Annotated[
    list[int] | None, typer.Argument(min=1, help="Job ids; or give filters instead.")
]
BulkStatus = Annotated[str | None, typer.Option("--status", "-s", help="Only this status.")]
BulkQueue = Annotated[str | None, typer.Option("--queue", "-q", help="Only this queue.")]
BulkType = Annotated[str | None, typer.Option("--type", "-t", help="Only this job type.")]
BulkBefore = Annotated[
    datetime | None, typer.Option(help="Only jobs created before this time (UTC if no offset).")
]
BulkAll = Annotated[
    bool, typer.Option("--all", help="Act on every job the action applies to, with no filter.")
]

PROGRESS_SECONDS = 1.0  # one call's budget: the count on screen moves about once a second


def refuse_ids_with_filters(*filters: object) -> None:
    if any(f not in (None, False) for f in filters):
        raise typer.BadParameter("give job ids or filters, not both", param_hint="'JOB_IDS'")


def run_bulk(
    action: bulk.Action,
    status: str | None,
    queue: str | None,
    job_type: str | None,
    created_before: datetime | None,
    every: bool,
) -> None:
    if created_before is not None and created_before.tzinfo is None:
        created_before = created_before.replace(tzinfo=UTC)
    where = bulk.JobFilter(status, queue, job_type, created_before)
    if where.empty and not every:
        raise typer.BadParameter(
            "give job ids, a filter (--status, --queue, --type, --created-before), or --all",
            param_hint="'JOB_IDS'",
        )
    allowed = bulk.FROM_STATUSES[action]
    if status is not None and status not in allowed:
        raise typer.BadParameter(
            f"{action} applies to {' or '.join(allowed)} jobs", param_hint="'--status'"
        )
    settings = load_settings()

    async def work(conn: Executor) -> int:
        total, after, up_to = 0, 0, None
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"{action}: 0 jobs", total=None)
            while True:
                result = await bulk.bulk_change(
                    conn,
                    action,
                    where,
                    batch_size=settings.api.bulk_batch_size,
                    time_budget=PROGRESS_SECONDS,
                    after_id=after,
                    up_to_id=up_to,
                )
                total += result.matched
                progress.update(task, description=f"{action}: {total} jobs")
                if result.done:
                    return total
                after, up_to = result.after_id, result.up_to_id

    total = run_db(settings, work)
    verb = "retried" if action == "retry" else "cancelled"
    console.print(f"{verb} {total} jobs")
