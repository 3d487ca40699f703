"""Bulk retry on many matching rows: our batched POST /jobs/retry work (worker.db.bulk, one short
transaction per batch, answers within a time budget and goes on from `after_id`) against the
anchor, one UPDATE of every matching row in a single transaction. Prints the throughput of
both, the longest single transaction, and how many calls a client made.

    python bench/bench_bulk.py --jobs 1000000
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SQL, fresh_database, machine_note, options, print_table, server
from worker.db import bulk
from worker.db.connection import create_pool


async def fill_failed(dsn: str, count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SQL["fill_failed"], count)
        await conn.execute(SQL["vacuum"])
    finally:
        await conn.close()


async def ours(dsn: str, batch: int, budget: float) -> tuple[float, float, int, int]:
    """Seconds in all, the longest batch, the calls a client made, jobs retried."""
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        started = time.perf_counter()
        calls, total, longest = 0, 0, 0.0
        after, up_to = 0, None
        where = bulk.JobFilter(status="failed")
        while True:
            # one batch per call here, to time the longest transaction; the API's own
            # calls are bulk_change with its time budget, the same batches back to back
            one = time.perf_counter()
            result = await bulk.bulk_change(
                pool, "retry", where, batch_size=batch, time_budget=0.0, after_id=after,
                up_to_id=up_to,
            )  # fmt: skip
            longest = max(longest, time.perf_counter() - one)
            total += result.matched
            calls += 1
            if result.done:
                break
            after, up_to = result.after_id, result.up_to_id
        seconds = time.perf_counter() - started
        return seconds, longest, max(1, round(seconds / budget + 0.5)), total
    finally:
        await pool.close()


async def anchor(dsn: str) -> tuple[float, int]:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        status = await conn.execute(SQL["retry_all_at_once"])
        return time.perf_counter() - started, int(status.split()[-1])
    finally:
        await conn.close()


async def run(count: int, batch: int, budget: float) -> None:
    with server() as srv:
        ours_dsn = await fresh_database(srv, "bench_bulk_ours", migrated=True)
        await fill_failed(ours_dsn, count)
        seconds, longest, calls, total = await ours(ours_dsn, batch, budget)
        anchor_dsn = await fresh_database(srv, "bench_bulk_anchor", migrated=True)
        await fill_failed(anchor_dsn, count)
        anchor_seconds, anchor_total = await anchor(anchor_dsn)
    assert total == anchor_total == count, (total, anchor_total, count)
    rows = [("run", "jobs/s", "seconds", "longest transaction")]
    rows.append((f"ours, batches of {batch}", f"{count / seconds:,.0f}", f"{seconds:.2f}",
                 f"{longest * 1000:.0f} ms"))  # fmt: skip
    rows.append(("one UPDATE (anchor)", f"{count / anchor_seconds:,.0f}", f"{anchor_seconds:.2f}",
                 f"{anchor_seconds * 1000:.0f} ms"))  # fmt: skip
    print_table(f"Bulk retry of {count:,} failed jobs", rows)
    print(f"\n  ours vs one UPDATE: {anchor_seconds / seconds:.2f}x the throughput")
    print(f"  longest transaction: {longest / anchor_seconds:.4f}x the anchor's")
    print(f"  client calls at a {budget:g} s budget each: about {calls}")
    print(f"  machine: {machine_note()}")


def main() -> None:
    args = options(
        __doc__,
        jobs=(1_000_000, "failed jobs to retry"),
        batch=(1000, "JOBQUEUE_BULK_BATCH_SIZE"),
        budget=(10.0, "JOBQUEUE_BULK_TIME_BUDGET"),
    )
    asyncio.run(run(args.jobs, args.batch, args.budget))


if __name__ == "__main__":
    main()
