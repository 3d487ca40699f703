"""Rich tables that both the CLI (`jobqueue stats`) and the dev stack's live view show."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from worker.db import inspect


def count_text(count: inspect.Count) -> str:
    if count.count is None:
        return "?"
    prefix = {"estimate": "~", "at_least": "≥"}.get(count.kind, "")
    return f"{prefix}{count.count}"


def queues_table(queues: inspect.QueueList) -> Table:
    table = Table(
        "QUEUE", "READY", "SCHEDULED", "RUNNING", "WORKERS", "OLDEST READY", title="queues"
    )
    for queue in queues.queues:
        table.add_row(
            escape(queue.queue_name),
            count_text(queue.ready),
            count_text(queue.scheduled),
            str(queue.running),
            str(queue.workers),
            "-"
            if queue.oldest_ready_age_seconds is None
            else f"{queue.oldest_ready_age_seconds:.1f}s",
        )
    if queues.truncated:
        table.caption = "more queues than shown"
    return table
