"""Queues as operators configure them: pause and resume, and GET /queues, which is each queue's
depth (worker.db.inspect) with its stored row (paused, limits as stored) and blocked count.

A queue exists as soon as a job, a worker or a row names it; a row is only written when someone
configures the queue, and pausing a name never seen creates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from worker.db import inspect, sql_files
from worker.db.jobs import Executor

_sql = sql_files.statements("queues")


@dataclass(frozen=True)
class QueueRow:
    name: str
    paused: bool
    concurrency_limit: int | None
    key_concurrency_limit: int | None
    rate_limit_jobs: int | None
    rate_limit_per_seconds: float | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> QueueRow:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @classmethod
    def unconfigured(cls, name: str) -> QueueRow:
        return cls(name, False, None, None, None, None, None, None)

    @property
    def rate_limit(self) -> dict[str, Any] | None:
        if self.rate_limit_jobs is None or self.rate_limit_per_seconds is None:
            return None
        return {"jobs": self.rate_limit_jobs, "per_seconds": self.rate_limit_per_seconds}


@dataclass(frozen=True)
class QueueState:
    """One line of GET /queues."""

    row: QueueRow
    depth: inspect.QueueDepth
    blocked: int

    def to_dict(self) -> dict[str, Any]:
        d = self.depth
        return {
            "name": self.row.name,
            "paused": self.row.paused,
            "concurrency_limit": self.row.concurrency_limit,
            "key_concurrency_limit": self.row.key_concurrency_limit,
            "rate_limit": self.row.rate_limit,
            "ready": d.ready,
            "scheduled": d.scheduled,
            "running": d.running,
            "blocked": self.blocked,
            "oldest_ready_age_seconds": d.oldest_ready_age_seconds,
            "workers": d.workers,
        }


async def set_paused(executor: Executor, name: str, paused: bool) -> QueueRow:
    row = await executor.fetchrow(_sql("queues_set_paused"), name, paused)
    assert row is not None
    return QueueRow.from_record(row)


async def paused_queues(
    executor: Executor, names: Sequence[str], wait_seconds: float | None = None
) -> list[str]:
    """Which of `names` are paused."""
    rows = await executor.fetch(_sql("queues_paused"), list(names), timeout=wait_seconds)
    return [row["name"] for row in rows]


def _idle(name: str) -> inspect.QueueDepth:
    zero = inspect.Count(0, "exact")
    return inspect.QueueDepth(name, zero, zero, 0, None, 0)


async def queue_states(
    executor: Executor, *, bound: int = inspect.DEFAULT_COUNT_BOUND
) -> tuple[list[QueueState], bool]:
    """Every queue known from jobs, workers or a row, by name; and whether the depth list was
    truncated (too many queues)."""
    depths = await inspect.queue_depths(executor, bound=bound)
    rows = {r.name: r for r in map(QueueRow.from_record, await executor.fetch(_sql("queues_list")))}
    by_name = {d.queue_name: d for d in depths.queues}
    blocked_only = await executor.fetch(_sql("queues_with_blocked"), inspect.MAX_QUEUE_GROUPS)
    names = sorted({*by_name, *rows, *(r["queue_name"] for r in blocked_only)})
    blocked = {
        r["queue_name"]: r["blocked"]
        for r in await executor.fetch(_sql("queues_count_blocked"), names, bound)
    }
    states = [
        QueueState(
            rows.get(name) or QueueRow.unconfigured(name),
            by_name.get(name) or _idle(name),
            blocked.get(name, 0),
        )
        for name in names
    ]
    return states, depths.truncated
