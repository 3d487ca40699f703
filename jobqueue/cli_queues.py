"""`jobqueue queues list|pause|resume`: a paused queue still takes jobs; no worker claims them
until it is resumed, and the controller counts them as no demand."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from jobqueue.cli_common import console, load_settings, print_json, run_db
from jobqueue.cli_jobs import JsonFlag
from jobqueue.tables import count_text
from worker.db import queues
from worker.db.queues import QueueState

queues_app = typer.Typer(help="List, pause and resume queues.", no_args_is_help=True)


def queue_states_table(found: list[QueueState], truncated: bool) -> Table:
    table = Table("QUEUE", "STATE", "READY", "SCHEDULED", "RUNNING", "BLOCKED", "WORKERS", "LIMITS")
    for q in found:
        limits = []
        if q.row.concurrency_limit is not None:
            limits.append(f"concurrency {q.row.concurrency_limit}")
        if q.row.key_concurrency_limit is not None:
            limits.append(f"per key {q.row.key_concurrency_limit}")
        if q.row.rate_limit is not None:
            limits.append(f"{q.row.rate_limit_jobs}/{q.row.rate_limit_per_seconds:g}s")
        table.add_row(
            escape(q.row.name),
            "[yellow]paused[/]" if q.row.paused else "active",
            count_text(q.depth.ready),
            count_text(q.depth.scheduled),
            str(q.depth.running),
            str(q.blocked),
            str(q.depth.workers),
            ", ".join(limits) or "-",
        )
    if truncated:
        table.caption = "more queues than shown"
    return table


@queues_app.command("list")
def list_queues(as_json: JsonFlag = False) -> None:
    """Each queue: pause state, depth, running and blocked jobs, workers and limits."""
    found, truncated = run_db(load_settings(), queues.queue_states)
    if as_json:
        rows = [
            {**q.to_dict(), "ready": asdict(q.depth.ready), "scheduled": asdict(q.depth.scheduled)}
            for q in found
        ]
        print_json({"queues": rows, "truncated": truncated})
    elif not found:
        console.print("no queues")
    else:
        console.print(queue_states_table(found, truncated))


def _set(name: str, paused: bool) -> None:
    run_db(load_settings(), lambda conn: queues.set_paused(conn, name, paused))
    console.print(f"queue {escape(name)} is {'paused' if paused else 'active'}")


@queues_app.command("pause")
def pause(name: Annotated[str, typer.Argument(help="The queue (it need not exist yet).")]) -> None:
    """Stop claiming from a queue; running jobs finish, enqueueing still works."""
    _set(name, True)


@queues_app.command("resume")
def resume(name: Annotated[str, typer.Argument(help="The queue.")]) -> None:
    """Claim from the queue again."""
    _set(name, False)
