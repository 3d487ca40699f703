"""Drain throughput: pre-fill N no-op jobs, then drain them with our workers (1 and 2
processes), pgqueuer (batch 100 and 500, 2 processes) and a raw asyncpg SKIP LOCKED loop
(2 processes), all on the same throwaway server in one run.

    python bench/bench_drain.py --jobs 100000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import contenders
from bench.common import (
    SQL,
    fresh_database,
    join_children,
    machine_note,
    print_table,
    ratio,
    server,
    start_children,
    wait_drained,
)
from worker.db.jobs import NewJob, enqueue_many

GOALS = "goal: >= 40k jobs/s, >= 2x pgqueuer's best, >= 50% of the raw loop"


@dataclass
class Result:
    name: str
    jobs_per_second: float
    seconds: float
    connections_per_process: int


async def fill_ours(dsn: str, count: int, chunk: int = 10_000) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for start in range(0, count, chunk):
            await enqueue_many(conn, [NewJob("noop") for _ in range(min(chunk, count - start))])
    finally:
        await conn.close()


async def vacuum(dsn: str) -> None:
    """Every contender starts from a vacuumed, analysed table."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SQL["vacuum"])
    finally:
        await conn.close()


async def measure(
    name: str,
    dsn: str,
    count: int,
    fill: Callable[[str, int], Awaitable[None]],
    child: Callable[..., None],
    child_args: tuple[Any, ...],
    processes: int,
    probe: str,
) -> Result:
    await fill(dsn, count)
    await vacuum(dsn)
    procs, go, stop = start_children(child, lambda _i: (dsn, *child_args), processes)
    connections: list[int] = []
    started = time.monotonic()
    go.set()
    try:
        finished = await wait_drained(dsn, probe, sample_connections=connections, procs=procs)
    finally:
        join_children(procs, stop)
    seconds = finished - started
    result = Result(name, count / seconds, seconds, max(connections, default=0))
    print(f"  {name}: {result.jobs_per_second:,.0f} jobs/s ({seconds:.2f}s)", flush=True)
    return result


async def run(
    count: int, slots: int, ack_batch: int, raw_batch: int, only_ours: bool
) -> list[Result]:
    results = []
    with server() as srv:
        for processes in (1, 2):
            dsn = await fresh_database(srv, f"bench_ours_{processes}", migrated=True)
            results.append(
                await measure(
                    f"ours, {processes} process{'es' if processes > 1 else ''}",
                    dsn,
                    count,
                    fill_ours,
                    contenders.ours,
                    (slots, ack_batch),
                    processes,
                    SQL["jobs_left"],
                )
            )
            await check_all_completed(dsn, count)
        if only_ours:
            return results
        for batch in (100, 500):
            dsn = await fresh_database(srv, f"bench_pgqueuer_{batch}", migrated=False)
            results.append(
                await measure(
                    f"pgqueuer batch {batch}, 2 processes",
                    dsn,
                    count,
                    contenders.pgqueuer_fill,
                    contenders.pgqueuer,
                    (batch,),
                    2,
                    SQL["pgqueuer_left"],
                )
            )
        dsn = await fresh_database(srv, "bench_raw", migrated=True)
        results.append(
            await measure(
                f"raw asyncpg loop, batch {raw_batch}, 2 processes",
                dsn,
                count,
                fill_ours,
                contenders.raw_loop,
                (raw_batch,),
                2,
                SQL["jobs_left"],
            )
        )
        await check_all_completed(dsn, count)
    return results


async def check_all_completed(dsn: str, count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        done = await conn.fetchval(SQL["jobs_done"])
    finally:
        await conn.close()
    if done != count:
        raise SystemExit(f"only {done} of {count} jobs completed")


def report(results: list[Result], count: int, slots: int) -> None:
    ours = max(results[:2], key=lambda r: r.jobs_per_second)
    pgq = max(results[2:4], key=lambda r: r.jobs_per_second)
    raw = results[4]
    rows = [("contender", "jobs/s", "seconds", "connections/process")]
    rows += [
        (r.name, f"{r.jobs_per_second:,.0f}", f"{r.seconds:.2f}", str(r.connections_per_process))
        for r in results
    ]
    print_table(f"Drain of {count:,} no-op jobs (ours: MAX_CONCURRENT_JOBS={slots})", rows)
    print(f"\n  ours (best, {ours.name}): {ours.jobs_per_second:,.0f} jobs/s")
    print(f"  vs pgqueuer's best ({pgq.name}): {ratio(ours.jobs_per_second, pgq.jobs_per_second)}")
    print(f"  vs the raw loop: {ratio(ours.jobs_per_second, raw.jobs_per_second)}")
    print(
        f"  connections held per worker process (most seen): "
        f"ours {max(r.connections_per_process for r in results[:2])}, "
        f"pgqueuer {max(r.connections_per_process for r in results[2:4])}"
    )
    print(f"  {GOALS}\n  machine: {machine_note()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs to pre-fill per run")
    parser.add_argument("--slots", type=int, default=1000, help="our MAX_CONCURRENT_JOBS")
    parser.add_argument("--ack-batch", type=int, default=500, help="our JOBQUEUE_ACK_BATCH_SIZE")
    parser.add_argument("--raw-batch", type=int, default=500, help="the raw loop's batch")
    parser.add_argument("--only-ours", action="store_true", help="skip the anchors (tuning)")
    args = parser.parse_args()
    results = asyncio.run(
        run(args.jobs, args.slots, args.ack_batch, args.raw_batch, args.only_ours)
    )
    if not args.only_ours:
        report(results, args.jobs, args.slots)


if __name__ == "__main__":
    main()
