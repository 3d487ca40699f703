"""One row per queue for the overview: depth, blocked and failed counts, oldest ready age,
the last hour's throughput, pause state and limits, all read in one snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from worker.db import console as db
from worker.db import inspect
from worker.db.inspect import Count

NONE = Count(0, "exact")


@dataclass
class QueueRow:
    name: str
    ready: Count = NONE
    scheduled: Count = NONE
    running: int = 0
    blocked: int = 0
    failed: int = 0
    oldest_ready_age_seconds: float | None = None
    workers: int = 0
    paused: bool = False
    limits: list[str] = field(default_factory=list)
    throughput: list[int] = field(default_factory=lambda: [0] * db.THROUGHPUT_MINUTES)


@dataclass
class Overview:
    queues: list[QueueRow]
    count_bound: int
    throughput_estimated_minutes: int


def describe_limits(settings: dict[str, Any]) -> list[str]:
    limits = []
    if settings.get("concurrency_limit") is not None:
        limits.append(f"{settings['concurrency_limit']} at once")
    if settings.get("key_concurrency_limit") is not None:
        limits.append(f"{settings['key_concurrency_limit']} per key")
    if settings.get("rate_limit_jobs") is not None:
        limits.append(f"{settings['rate_limit_jobs']} per {settings['rate_limit_per_seconds']:g} s")
    return limits


async def load_overview(conn: asyncpg.Connection) -> Overview:
    depths = await inspect.queue_depths(conn)
    blocked = await db.counts_by_queue(conn, "blocked")
    failed = await db.counts_by_queue(conn, "failed")
    configured = await db.queue_settings(conn)
    throughput = await db.throughput(conn)

    rows: dict[str, QueueRow] = {}

    def row(name: str) -> QueueRow:
        return rows.setdefault(name, QueueRow(name))

    for depth in depths.queues:
        entry = row(depth.queue_name)
        entry.ready, entry.scheduled, entry.running = depth.ready, depth.scheduled, depth.running
        entry.oldest_ready_age_seconds = depth.oldest_ready_age_seconds
        entry.workers = depth.workers
    for name, n in blocked.items():
        row(name).blocked = n
    for name, n in failed.items():
        row(name).failed = n
    for name, settings in configured.items():
        entry = row(name)
        entry.paused = bool(settings["paused"])
        entry.limits = describe_limits(settings)
    for name, series in throughput.per_queue.items():
        row(name).throughput = series
    return Overview(
        queues=[rows[name] for name in sorted(rows)],
        count_bound=db.COUNT_BOUND,
        throughput_estimated_minutes=throughput.estimated,
    )
