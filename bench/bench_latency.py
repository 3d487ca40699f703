"""Latency: enqueue -> handler start at p50 and p99, with RATE jobs/s offered one by one to idle
workers: ours (one process) beside pgqueuer (one process), on the same throwaway server.

    python bench/bench_latency.py --jobs 5000 --rate 500
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, contenders
from worker.db.jobs import NewJob, enqueue

GOALS = "goal: p50 <= 5 ms, p99 <= 25 ms"
WARM_UP_SECONDS = 1.0  # let the worker connect and go idle before the first job


async def offer(count: int, rate: float, send: Callable[[], Awaitable[object]]) -> float:
    """Send `count` jobs at a steady `rate`; returns the rate achieved."""
    started = time.monotonic()
    for index in range(count):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await send()
    return count / (time.monotonic() - started)


async def ours(srv: object, count: int, rate: float, slots: int) -> tuple[list[float], float]:
    dsn = await common.fresh_database(srv, "bench_latency_ours", migrated=True)
    procs, go, stop = common.start_children(contenders.ours, lambda _i: (dsn, slots, 100), 1)
    conn = await asyncpg.connect(dsn)
    try:
        go.set()
        await asyncio.sleep(WARM_UP_SECONDS)
        achieved = await offer(
            count, rate, lambda: enqueue(conn, NewJob("latency", {"t": time.time()}))
        )
        await common.wait_drained(dsn, common.SQL["jobs_left"], procs=procs)
        latencies = [row[0] for row in await conn.fetch(common.SQL["latencies"])]
    finally:
        await conn.close()
        common.join_children(procs, stop)
    return latencies, achieved


async def pgqueuer(srv: object, count: int, rate: float, batch: int) -> tuple[list[float], float]:
    from pgqueuer import AsyncpgDriver, Queries

    dsn = await common.fresh_database(srv, "bench_latency_pgqueuer", migrated=False)
    await contenders.pgqueuer_fill(dsn, 0)  # installs its schema
    results = common.SPAWN.Queue()
    procs, go, stop = common.start_children(
        contenders.pgqueuer, lambda _i: (dsn, batch, results), 1
    )
    conn = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(conn))
        go.set()
        await asyncio.sleep(WARM_UP_SECONDS)
        achieved = await offer(
            count, rate, lambda: queries.enqueue("latency", str(time.time()).encode())
        )
        await common.wait_drained(dsn, common.SQL["pgqueuer_left"], procs=procs)
    finally:
        await conn.close()
        stop.set()
    latencies = results.get(timeout=60)
    common.join_children(procs, stop)
    return latencies, achieved


def percentiles(latencies: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "p50": cuts[49] * 1000,
        "p90": cuts[89] * 1000,
        "p99": cuts[98] * 1000,
        "max": max(latencies) * 1000,
    }


async def run(count: int, rate: float, slots: int, pgq_batch: int) -> None:
    with common.server() as srv:
        mine, mine_rate = await ours(srv, count, rate, slots)
        theirs, their_rate = await pgqueuer(srv, count, rate, pgq_batch)
    ours_p, theirs_p = percentiles(mine), percentiles(theirs)
    rows = [("contender", "offered jobs/s", "jobs", "p50 ms", "p90 ms", "p99 ms", "max ms")]
    for name, pct, achieved, done in (
        (f"ours (MAX_CONCURRENT_JOBS={slots})", ours_p, mine_rate, len(mine)),
        (f"pgqueuer (batch {pgq_batch})", theirs_p, their_rate, len(theirs)),
    ):
        rows.append(
            (
                name,
                f"{achieved:.0f}",
                str(done),
                f"{pct['p50']:.2f}",
                f"{pct['p90']:.2f}",
                f"{pct['p99']:.2f}",
                f"{pct['max']:.2f}",
            )
        )
    common.print_table(f"Enqueue -> start latency, {count:,} jobs offered at {rate:.0f}/s", rows)
    print(
        f"\n  p50: ours {ours_p['p50']:.2f} ms, pgqueuer {theirs_p['p50']:.2f} ms "
        f"(pgqueuer/ours {common.ratio(theirs_p['p50'], ours_p['p50'])})"
    )
    print(
        f"  p99: ours {ours_p['p99']:.2f} ms, pgqueuer {theirs_p['p99']:.2f} ms "
        f"(pgqueuer/ours {common.ratio(theirs_p['p99'], ours_p['p99'])})"
    )
    print(f"  {GOALS}\n  machine: {common.machine_note()}")


def main() -> None:
    args = common.options(
        __doc__,
        jobs=(5000, "jobs to offer"),
        rate=(500.0, "jobs offered per second"),
        slots=10,
        pgqueuer_batch=(10, "pgqueuer's batch_size"),
    )
    asyncio.run(run(args.jobs, args.rate, args.slots, args.pgqueuer_batch))


if __name__ == "__main__":
    main()
