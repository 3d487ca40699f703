"""The read side for operators: list jobs, stats, queue depths and live workers.

Counts stay cheap on tables of millions of rows: each one stops at a bound, and beyond it
the number is an estimate from PostgreSQL's statistics. Every count says which kind it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from worker.db import sql_files
from worker.db.jobs import Executor, Job
from worker.db.statuses import JOB_STATUSES

DEFAULT_COUNT_BOUND = 10_000
MAX_QUEUE_GROUPS = 1_000  # (queue, priority) pairs walked for the queue list
LARGE_TABLE_BOUNDS = 10  # past this many bounds of rows in the statistics, never sample

CountKind = Literal["exact", "estimate", "at_least", "unknown"]


_sql = sql_files.statements("inspect")


@dataclass(frozen=True)
class Count:
    count: int | None
    kind: CountKind

    @classmethod
    def bounded(cls, counted: int, bound: int) -> Count:
        return cls(counted, "at_least" if counted >= bound else "exact")


@dataclass(frozen=True)
class QueueDepth:
    queue_name: str
    ready: Count
    scheduled: Count
    running: int
    oldest_ready_age_seconds: float | None
    workers: int


@dataclass(frozen=True)
class QueueList:
    queues: list[QueueDepth]
    truncated: bool


@dataclass(frozen=True)
class Stats:
    total: Count
    by_status: dict[str, Count]
    queues: QueueList
    oldest_pending_age_seconds: float | None
    done_last_minute: Count
    count_bound: int


@dataclass(frozen=True)
class LiveWorker:
    id: str
    name: str
    queues: list[str]
    concurrency: int
    in_flight: int
    started_at: datetime
    heartbeat_at: datetime
    lease_expires_at: datetime
    jobs: list[dict[str, Any]] = field(default_factory=list)


async def list_jobs(
    executor: Executor,
    *,
    statuses: Sequence[str] | None = None,
    queue_name: str | None = None,
    job_type: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Job]:
    """Newest first. Pass the last id of a page as before_id to get the next one."""
    rows: list[Any] = []
    for statement, args in list_statements(statuses, queue_name, job_type, before_id, limit):
        rows += await executor.fetch(statement, *args)
    rows.sort(key=lambda row: row["id"], reverse=True)
    return [Job.from_record(row) for row in rows[:limit]]


RARE_STATUSES = ("failed", "cancelled", "blocked")  # those jobs_rare_status_idx holds


def list_statements(
    statuses: Sequence[str] | None,
    queue_name: str | None,
    job_type: str | None,
    before_id: int | None,
    limit: int,
) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements (with their arguments) whose rows, each newest first, merge into one
    page of list_jobs. One statement per status, each through the index that suits it: an
    ANY() over several would come back in status order and need a sort of every match."""
    if not statuses:
        return [(_sql("list_jobs"), (None, queue_name, job_type, before_id, limit))]
    found = []
    for status in dict.fromkeys(statuses):
        args: tuple[Any, ...]
        if status in RARE_STATUSES:
            statement, args = "list_jobs_by_rare_status", (status, queue_name, job_type)
            extra: tuple[Any, ...] = (MAX_QUEUE_GROUPS,)
        elif status == "running":
            statement, args, extra = "list_jobs_running", (queue_name, job_type), ()
        else:  # pending and completed: most of the newest ids, found by walking them
            statement, args, extra = "list_jobs", ([status], queue_name, job_type), ()
        found.append((_sql(statement), (*args, before_id, limit, *extra)))
    return found


async def queue_depths(executor: Executor, *, bound: int = DEFAULT_COUNT_BOUND) -> QueueList:
    rows = await executor.fetch(_sql("queue_depths"), bound, MAX_QUEUE_GROUPS)
    queues = [
        QueueDepth(
            queue_name=row["queue_name"],
            ready=Count(row["ready"], "at_least" if row["ready_capped"] else "exact"),
            scheduled=Count(row["scheduled"], "at_least" if row["scheduled_capped"] else "exact"),
            running=row["running"],
            oldest_ready_age_seconds=row["oldest_ready_age_seconds"],
            workers=row["workers"],
        )
        for row in rows
    ]
    return QueueList(queues, truncated=any(row["truncated"] for row in rows))


def estimate_statuses(
    total: int, statuses: Sequence[str] | None, freqs: Sequence[float] | None
) -> dict[str, Count]:
    """Per-status estimates from pg_stats: the table's reltuples times each status's share.

    A status missing from the statistics' common values was too rare to show up in the
    ANALYZE sample; we call that an estimate of zero.
    """
    if total < 0 or statuses is None or freqs is None:
        return {status: Count(None, "unknown") for status in JOB_STATUSES}
    shares = dict(zip(statuses, freqs, strict=True))
    return {
        status: Count(round(total * shares.get(status, 0.0)), "estimate") for status in JOB_STATUSES
    }


def merge_bounded(bounded: Count, estimate: Count) -> Count:
    """An exact count wins; past the bound an estimate, never below what was counted."""
    if bounded.kind == "exact" or estimate.count is None:
        return bounded
    return Count(max(estimate.count, bounded.count or 0), "estimate")


async def exact_counts(executor: Executor, bound: int) -> dict[str, Count] | None:
    """Per-status counts of a table under `bound` rows; None when it holds more."""
    sample = await executor.fetch(_sql("sample_status_counts"), bound)
    sampled = {row["status"]: row["n"] for row in sample}
    if sum(sampled.values()) >= bound:
        return None
    return {status: Count(sampled.get(status, 0), "exact") for status in JOB_STATUSES}


async def stats_overview(executor: Executor, *, bound: int = DEFAULT_COUNT_BOUND) -> Stats:
    estimates_row = await executor.fetchrow(_sql("status_estimates"))
    active = await executor.fetchrow(_sql("active_counts"), bound)
    assert estimates_row is not None and active is not None
    queues = await queue_depths(executor, bound=bound)
    reltuples = estimates_row["total"]

    # A table the statistics call large is not sampled: after a mass prune its first pages
    # are empty, and even a LIMITed sequential scan would read through all of them.
    exact = None
    if reltuples < LARGE_TABLE_BOUNDS * bound:
        exact = await exact_counts(executor, bound)
    if exact is not None:
        by_status = exact
        total = Count(sum(count.count or 0 for count in exact.values()), "exact")
    else:
        estimates = estimate_statuses(reltuples, estimates_row["statuses"], estimates_row["freqs"])
        by_status = dict(estimates)
        for status in ("pending", "running"):
            counted = Count.bounded(active[status], bound)
            by_status[status] = merge_bounded(counted, estimates[status])
        total = (
            Count(max(reltuples, bound), "estimate") if reltuples >= 0 else Count(bound, "at_least")
        )

    ages = [q.oldest_ready_age_seconds for q in queues.queues]
    known_ages = [age for age in ages if age is not None]
    return Stats(
        total=total,
        by_status=by_status,
        queues=queues,
        oldest_pending_age_seconds=max(known_ages) if known_ages else None,
        done_last_minute=Count.bounded(active["done_last_minute"], bound),
        count_bound=bound,
    )


async def live_workers(executor: Executor) -> list[LiveWorker]:
    """Needs the project's jsonb codec on the executor (worker.db.connection sets it)."""
    rows = await executor.fetch(_sql("live_workers"))
    return [
        LiveWorker(
            id=str(row["id"]),
            name=row["name"],
            queues=list(row["queues"]),
            concurrency=row["concurrency"],
            in_flight=row["in_flight"],
            started_at=row["started_at"],
            heartbeat_at=row["heartbeat_at"],
            lease_expires_at=row["lease_expires_at"],
            jobs=list(row["jobs"]),
        )
        for row in rows
    ]
