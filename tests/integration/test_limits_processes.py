"""Limits across `jobqueue worker` processes: a hammer with 100 slots whose sampled running
counts never exceed a limit, and a rate limit whose starts are counted in every period."""

from __future__ import annotations

import asyncio
import bisect
import subprocess
from datetime import datetime
from typing import Any

import asyncpg

from tests.integration.limits_support import add_jobs, running_counts, set_limits
from tests.integration.queue_support import all_finished

Popen = subprocess.Popen  # type: ignore[type-arg]


async def test_hammer_four_processes_and_100_slots_never_exceed_a_limit(
    pg_dsn: str, conn: asyncpg.Connection, workers: Any
) -> None:
    await set_limits(conn, "default", concurrency=12, key_concurrency=2)
    await set_limits(conn, "other", concurrency=5)
    keys = [f"tenant-{i % 4}" if i % 7 else None for i in range(700)]
    await add_jobs(conn, "default", keys, job_type="test_sleep", payload='{"seconds": 0.02}')
    await add_jobs(conn, "other", [None] * 200, job_type="test_sleep", payload='{"seconds": 0.02}')
    for _ in range(4):
        workers(pg_dsn, MAX_CONCURRENT_JOBS="25", WORKER_QUEUES="default,other")
    peaks: dict[str, int] = {}
    key_peak = 0
    samples = 0
    while await conn.fetchval("SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')"):
        per_queue, per_key = await running_counts(conn)
        samples += 1
        for queue, n in per_queue.items():
            peaks[queue] = max(peaks.get(queue, 0), n)
        key_peak = max([key_peak, *per_key.values()])
        assert per_queue.get("default", 0) <= 12, per_queue
        assert per_queue.get("other", 0) <= 5, per_queue
        assert all(n <= 2 for n in per_key.values()), per_key
        await asyncio.sleep(0.005)
    print(f"{samples} samples, peaks {peaks}, key peak {key_peak}")
    assert samples > 10 and peaks["default"] > 3  # the limits were really in play
    counts = await conn.fetch("SELECT status, attempts, count(*) FROM jobs GROUP BY 1, 2")
    assert [(r["status"], r["attempts"], r["count"]) for r in counts] == [("completed", 1, 900)]


def _most_in_any_window(starts: list[datetime], seconds: float) -> int:
    """The most starts in any half-open window (t - seconds, t]."""
    stamps = sorted(s.timestamp() for s in starts)
    return max(
        (i + 1 - bisect.bisect_right(stamps, t - seconds) for i, t in enumerate(stamps)),
        default=0,
    )


async def test_a_rate_limit_holds_in_every_period_across_processes(
    pg_dsn: str, conn: asyncpg.Connection, workers: Any
) -> None:
    await set_limits(conn, "default", rate=(8, 1.0))
    await add_jobs(conn, "default", [None] * 48, job_type="test_sleep")
    for _ in range(3):
        workers(pg_dsn, MAX_CONCURRENT_JOBS="10", POLL_INTERVAL="0.05")
    await all_finished(conn, within=240)
    starts = [r["started_at"] for r in await conn.fetch("SELECT started_at FROM jobs")]
    assert len(starts) == 48
    # every sliding period, and so every calendar second too
    assert _most_in_any_window(starts, 1.0) <= 8
    by_second: dict[int, int] = {}
    for s in starts:
        by_second[int(s.timestamp())] = by_second.get(int(s.timestamp()), 0) + 1
    assert max(by_second.values()) <= 8
    assert _most_in_any_window(starts, 1.0) == 8  # it did bind
