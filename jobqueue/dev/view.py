"""What `jobqueue dev` shows: a live Rich view of queues, workers, throughput and scale
decisions, or (with --no-ui) the same events as plain log lines."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from jobqueue.dev.autoscaler import LocalAutoscaler, ScaleRecord, WorkerFleet
from jobqueue.tables import queues_table
from worker.ages import format_age
from worker.db import dev as dev_sql
from worker.db import inspect
from worker.db.connection import DatabaseUnavailable, connect

log = logging.getLogger("jobqueue.dev")

THROUGHPUT_WINDOW_SECONDS = 10
THROUGHPUT_COUNT_BOUND = 1_000_000
_FAILURES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class EventLog:
    """Recent lifecycle messages; printed as log lines when there is no live view."""

    def __init__(self, echo: bool) -> None:
        self.lines: deque[tuple[datetime, str]] = deque(maxlen=8)
        self._echo = echo

    def add(self, message: str) -> None:
        self.lines.append((datetime.now().astimezone(), message))
        if self._echo:
            log.info(message)

    def scaled(self, record: ScaleRecord) -> None:
        self.add(f"scaled {record.describe()}")


@dataclass
class Snapshot:
    queues: inspect.QueueList = field(default_factory=lambda: inspect.QueueList([], False))
    workers: dict[str, inspect.LiveWorker] = field(default_factory=dict)
    finished: dict[str, int] = field(default_factory=dict)  # in the throughput window
    error: str | None = None


class SnapshotReader:
    """The view's one database connection, reopened after a failure."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def read(self) -> Snapshot:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await connect(self._dsn, timeout=5)
            conn = self._conn
            queues = await inspect.queue_depths(conn)
            workers = await inspect.live_workers(conn)
            finished = await dev_sql.count_jobs_recently_finished(
                conn, float(THROUGHPUT_WINDOW_SECONDS), THROUGHPUT_COUNT_BOUND
            )
        except (*_FAILURES, DatabaseUnavailable) as exc:
            await self.close()
            return Snapshot(error=str(exc))
        return Snapshot(
            queues=queues,
            workers={w.name: w for w in workers},
            finished=finished,
        )

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()


@dataclass(frozen=True)
class Addresses:
    api: str
    dsn: str
    data_dir: str


def cli_command() -> str:
    """How to run this `jobqueue` from the user's shell: `jobqueue` when PATH finds this very
    script, else its path (`.venv/bin/jobqueue` after `make dev`, whose venv is not on PATH)."""
    script = Path(sys.executable).with_name("jobqueue")
    found = shutil.which("jobqueue")
    if found is not None and Path(found).resolve() == script.resolve():
        return "jobqueue"
    relative = os.path.relpath(script)
    return str(script) if relative.startswith("..") else relative


def render(
    addresses: Addresses,
    snapshot: Snapshot,
    fleet: WorkerFleet,
    autoscaler: LocalAutoscaler,
    events: EventLog,
    config_line: str,
) -> RenderableType:
    header = Text.assemble(
        ("jobqueue dev", "bold"),
        "  API ",
        (addresses.api, "cyan"),
        f" (docs: {addresses.api}/docs)\n",
        "DB_URL=",
        (addresses.dsn, "cyan"),
        f"   data: {addresses.data_dir}\n",
        (f"{config_line}   Ctrl-C drains the workers and stops everything", "dim"),
    )
    parts: list[RenderableType] = [Panel(header, expand=False)]
    if snapshot.error:
        parts.append(Text(f"database: {snapshot.error}", style="red"))
    queues = queues_table(snapshot.queues)
    if not snapshot.queues.queues:
        queues.caption = "no jobs yet: try the commands at the bottom"
    parts.append(queues)
    parts.append(_workers_table(snapshot, fleet))
    parts.append(_throughput(snapshot, autoscaler))
    parts.append(_decisions(autoscaler))
    parts.append(_events(events))
    parts.append(
        Text(
            f"try: curl -X POST {addresses.api}/api/v1/queue/jobs -H 'Content-Type: "
            'application/json\' -d \'{"job_type": "noop", "payload": {}}\'\n'
            f"  or: DB_URL={addresses.dsn} {cli_command()} enqueue noop --count 500",
            style="dim",
        )
    )
    return Group(*parts)


def _workers_table(snapshot: Snapshot, fleet: WorkerFleet) -> Table:
    table = Table("WORKER", "PID", "STATE", "IN FLIGHT", "UP", title="local workers")
    now = time.monotonic()
    for child in fleet.all:
        registered = snapshot.workers.get(child.name)
        if child.stopping_since is not None:
            state = "[yellow]draining[/]"
        elif registered is None:
            state = "[dim]starting[/]"
        else:
            state = "[green]serving[/]"
        in_flight = f"{registered.in_flight}/{registered.concurrency}" if registered else "-"
        table.add_row(
            child.name, str(child.pid), state, in_flight, format_age(now - child.started_at)
        )
    if not fleet.all:
        table.caption = "none: the autoscaler starts workers when jobs are ready"
    return table


def _throughput(snapshot: Snapshot, autoscaler: LocalAutoscaler) -> Text:
    completed = snapshot.finished.get("completed", 0)
    failed = snapshot.finished.get("failed", 0)
    rate = completed / THROUGHPUT_WINDOW_SECONDS
    depth = autoscaler.last_depth
    decision = autoscaler.last_decision
    watched = (
        "depth unknown"
        if depth is None
        else f"{depth.ready} ready, {depth.running} running on the watched queues"
    )
    target = (
        ""
        if decision is None
        else f"; policy: {decision.replicas} workers ({decision.reason.value})"
    )
    return Text(
        f"throughput: {rate:.1f} jobs/s completed, {failed} failed "
        f"(last {THROUGHPUT_WINDOW_SECONDS}s)   {watched}{target}"
    )


def _decisions(autoscaler: LocalAutoscaler) -> Table:
    table = Table("AT", "DECISION", title="scale decisions", title_justify="left")
    for record in list(autoscaler.history)[-6:]:
        table.add_row(record.at.strftime("%H:%M:%S"), record.describe())
    if not autoscaler.history:
        table.caption = "none yet"
    return table


def _events(events: EventLog) -> Text:
    text = Text()
    for at, message in events.lines:
        text.append(f"{at:%H:%M:%S} ", style="dim")
        text.append(message + "\n")
    return text
