"""The console's data: per-queue counts and settings, throughput, search, schedules, scaling
decisions, and its actions (pause, resume, bulk retry). Bounded work on millions of jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.db import sql_files
from worker.db.jobs import Executor

_sql = sql_files.statements("console")

COUNT_BOUND = 1_000  # per-queue failed and blocked counts stop here
MAX_QUEUES = 1_000
THROUGHPUT_SAMPLE = 50  # finished jobs read per minute of the last hour's chart
THROUGHPUT_MINUTES = 60
RETRY_SLICE = 5_000
DECISIONS_PER_DEPLOYMENT = 120


@dataclass(frozen=True)
class Throughput:
    """Jobs finished per minute, oldest minute first, per queue; `estimated` counts the
    minutes too busy to count, whose figures are scaled up from a sample."""

    per_queue: dict[str, list[int]]
    estimated: int


async def counts_by_queue(
    executor: Executor, status: str, *, bound: int = COUNT_BOUND
) -> dict[str, int]:
    """Jobs of `status` per queue, each count stopping at `bound`."""
    rows = await executor.fetch(_sql("jobs_count_by_queue"), status, bound, MAX_QUEUES)
    return {row["queue_name"]: row["n"] for row in rows}


async def queue_settings(executor: Executor) -> dict[str, dict[str, Any]]:
    rows = await executor.fetch(_sql("queues_select_all"))
    return {row["name"]: dict(row) for row in rows}


def minute_scale(sampled: int, sample: int, start_at: datetime, last_at: datetime) -> float:
    """How much to multiply a minute's sampled counts by: 1 when the sample held the whole
    minute, else the minute over the time its first `sample` jobs took."""
    if sampled < sample:
        return 1.0
    taken = (last_at - start_at).total_seconds()
    return 60.0 / taken if taken > 0 else float(sample)


async def throughput(executor: Executor, *, sample: int = THROUGHPUT_SAMPLE) -> Throughput:
    rows = await executor.fetch(_sql("jobs_throughput_recent"), sample)
    minutes: dict[int, list[Any]] = {}
    for row in rows:
        minutes.setdefault(row["minutes_ago"], []).append(row)
    per_queue: dict[str, list[int]] = {}
    estimated = 0
    for minutes_ago, group in minutes.items():
        scale = minute_scale(
            sum(row["n"] for row in group),
            sample,
            group[0]["start_at"],
            max(row["last_at"] for row in group),
        )
        estimated += scale > 1.0
        for row in group:
            series = per_queue.setdefault(row["queue_name"], [0] * THROUGHPUT_MINUTES)
            series[THROUGHPUT_MINUTES - 1 - minutes_ago] = round(row["n"] * scale)
    return Throughput(per_queue, estimated)


async def set_queue_paused(executor: Executor, name: str, paused: bool) -> bool:
    row = await executor.fetchrow(_sql("queues_upsert_paused"), name, paused)
    assert row is not None
    return bool(row["paused"])


async def count_failed(
    executor: Executor,
    *,
    queue_name: str | None,
    job_type: str | None,
    bound: int = COUNT_BOUND,
) -> int:
    n = await executor.fetchval(_sql("jobs_count_failed_matching"), queue_name, job_type, bound)
    return int(n)


async def retry_failed(executor: Executor, *, queue_name: str | None, job_type: str | None) -> int:
    """Failed jobs matching the filter back to pending, in slices so that no statement holds
    a million row locks; returns how many were retried."""
    total = 0
    while True:
        row = await executor.fetchrow(
            _sql("jobs_retry_failed_matching"), queue_name, job_type, RETRY_SLICE
        )
        assert row is not None
        total += row["n"]
        if row["n"] < RETRY_SLICE:
            return total


async def job_ids_by_key(executor: Executor, key: str, *, limit: int = 20) -> list[int]:
    rows = await executor.fetch(_sql("jobs_select_by_key"), key, limit)
    return [row["id"] for row in rows]


async def job_row(executor: Executor, job_id: int) -> dict[str, Any] | None:
    """Every column of the job, those of later migrations too."""
    row = await executor.fetchrow(_sql("jobs_select_one"), job_id)
    if row is None:
        return None
    # jsonb arrives decoded (the pool's codec): a str here is a JSON string, not JSON text
    return dict(row)


async def batch_counts(executor: Executor, batch_id: int) -> dict[str, int]:
    rows = await executor.fetch(_sql("jobs_count_batch"), batch_id)
    return {row["status"]: row["n"] for row in rows}


async def schedules(executor: Executor, *, limit: int = 500) -> list[dict[str, Any]]:
    rows = await executor.fetch(_sql("schedules_select_all"), limit)
    return [dict(row) for row in rows]


async def scaling_decisions(
    executor: Executor, *, within_seconds: float, per_deployment: int = DECISIONS_PER_DEPLOYMENT
) -> list[dict[str, Any]]:
    """Recent decisions, oldest first within each (namespace, deployment)."""
    rows = await executor.fetch(_sql("scaling_decisions_recent"), within_seconds, per_deployment)
    return [dict(row) for row in rows]
