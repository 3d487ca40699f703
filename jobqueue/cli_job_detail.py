"""`jobqueue jobs get`: one job as GET /jobs/{id} answers it, with its attempts' errors
(tracebacks included) and its handler's log lines."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from jobqueue.cli_common import console
from worker.db import attempts
from worker.db.errors import JobNotFound
from worker.db.jobs import get_job

STATUS_STYLES = {
    "pending": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "dim",
    "blocked": "magenta",
}


async def fetch_detail(conn: asyncpg.Connection, job_id: int) -> dict[str, Any]:
    """The job's fields, `errors` (newest first) and `logs`, as the API gives them."""
    job = await get_job(conn, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return await attempts.job_detail(conn, job)


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def render_detail(detail: dict[str, Any]) -> None:
    """Every field, then the errors with their tracebacks, then the log lines. Values are
    shown as text, never read as Rich markup (a payload may hold `[brackets]`)."""
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in detail.items():
        if key in ("errors", "logs"):
            continue
        if key == "status":
            table.add_row(key, Text(str(value), style=STATUS_STYLES.get(str(value), "")))
        elif isinstance(value, dict | list):
            table.add_row(key, Text(_compact_json(value)))
        else:
            table.add_row(key, Text("-" if value is None else str(value)))
    console.print(table)
    if detail["errors"]:
        console.print(f"\n[bold]errors[/] ({len(detail['errors'])}, newest first)")
        for error in detail["errors"]:
            console.print(
                f"[red]attempt {error['attempt']}[/] at {error['at']}: {escape(error['error'])}",
                highlight=False,
            )
            if error["traceback"]:
                console.print(Text(error["traceback"], style="dim"), highlight=False)
    if detail["logs"]:
        console.print(f"\n[bold]logs[/] ({len(detail['logs'])} lines)")
        for line in detail["logs"]:
            console.print(
                Text(f"#{line['attempt']} {line['at']} {line['level']:<7} {line['message']}"),
                highlight=False,
            )
