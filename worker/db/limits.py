"""Flow control's settings and live view: set a queue's concurrency, key and rate limits, and
read what runs and waits under them. The claim enforces them (migration 0006's
jobqueue_claim_limited, called by claim_jobs); this module only writes and reads the `queues`
rows and counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from worker.db import sql_files
from worker.db.jobs import Executor

DEFAULT_COUNT_BOUND = 10_000
MAX_LIMIT = 2**31 - 1  # the columns are PostgreSQL integers
MAX_PERIOD_SECONDS = 366 * 24 * 3600.0  # a rate's window: up to a year

_sql = sql_files.statements("limits")


@dataclass(frozen=True)
class RateLimit:
    jobs: int
    per_seconds: float


# A field left out of a change keeps its value; None clears it.
KEEP: Any = object()


@dataclass(frozen=True)
class LimitChange:
    concurrency_limit: int | None = KEEP
    key_concurrency_limit: int | None = KEEP
    rate_limit: RateLimit | None = KEEP


@dataclass(frozen=True)
class QueueFlow:
    """A queue's limits and what they hold: `blocked` counts ready jobs a claim could not
    take now (up to the bound), `recent_starts` the starts inside the rate window."""

    name: str
    paused: bool
    concurrency_limit: int | None
    key_concurrency_limit: int | None
    rate_limit: RateLimit | None
    running: int
    recent_starts: int
    blocked: int
    blocked_bound: int

    def to_dict(self) -> dict[str, Any]:
        rate = self.rate_limit
        return {
            "name": self.name,
            "paused": self.paused,
            "concurrency_limit": self.concurrency_limit,
            "key_concurrency_limit": self.key_concurrency_limit,
            "rate_limit": None
            if rate is None
            else {"jobs": rate.jobs, "per_seconds": rate.per_seconds},
            "running": self.running,
            "recent_starts": self.recent_starts,
            "blocked": {
                "count": self.blocked,
                "kind": "at_least" if self.blocked >= self.blocked_bound else "exact",
            },
        }


def _flow(row: Any, bound: int) -> QueueFlow:
    jobs, per_seconds = row["rate_limit_jobs"], row["rate_limit_per_seconds"]
    return QueueFlow(
        name=row["name"],
        paused=row["paused"],
        concurrency_limit=row["concurrency_limit"],
        key_concurrency_limit=row["key_concurrency_limit"],
        rate_limit=None if jobs is None else RateLimit(jobs, per_seconds),
        running=row["running"],
        recent_starts=row["recent_starts"],
        blocked=row["blocked"],
        blocked_bound=bound,
    )


async def set_limits(executor: Executor, queue: str, change: LimitChange) -> QueueFlow:
    """Apply `change` to the queue's row (created when new) and return its flow view."""
    rate = change.rate_limit
    await executor.fetchval(
        _sql("queues_set_limits"),
        queue,
        change.concurrency_limit is not KEEP,
        None if change.concurrency_limit is KEEP else change.concurrency_limit,
        change.key_concurrency_limit is not KEEP,
        None if change.key_concurrency_limit is KEEP else change.key_concurrency_limit,
        rate is not KEEP,
        None if rate is KEEP or rate is None else rate.jobs,
        None if rate is KEEP or rate is None else rate.per_seconds,
    )
    (flow,) = await queue_flows(executor, [queue])
    return flow


async def queue_flows(
    executor: Executor, names: Sequence[str] | None = None, bound: int = DEFAULT_COUNT_BOUND
) -> list[QueueFlow]:
    """The flow view of the named queues that have a row (all of them when `names` is None),
    in name order. A queue without a row has no limits: nothing is blocked by one."""
    rows = await executor.fetch(_sql("queues_flow"), None if names is None else list(names), bound)
    return [_flow(row, bound) for row in rows]
