"""Drain throughput: pre-fill N no-op jobs, then drain them with our workers (1 and 2
processes, at --slots and again at --small-slots), pgqueuer (batch 100 and 500, 2 processes)
and a raw asyncpg SKIP LOCKED loop (2 processes), all on the same throwaway server in one run.

    python bench/bench_drain.py --jobs 100000

Most users run a few slots per process, not a thousand: the --small-slots rows (32 by
default; 0 leaves them out) show what such a pool drains, beside the large one, with each
one's ratio to the raw loop.
"""

from __future__ import annotations

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

from bench import common, contenders
from worker.db.jobs import NewJob, enqueue_many

GOALS = "goal: >= 40k jobs/s, >= 2x pgqueuer's best, >= 50% of the raw loop"


@dataclass
class Result:
    name: str
    jobs_per_second: float
    seconds: float
    connections_per_process: int
    group: str = ""  # "ours <slots>", "pgqueuer" or "raw"


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
        await conn.execute(common.SQL["vacuum"])
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
    group: str = "",
) -> Result:
    await fill(dsn, count)
    await vacuum(dsn)
    procs, go, stop = common.start_children(child, lambda _i: (dsn, *child_args), processes)
    connections: list[int] = []
    started = time.monotonic()
    go.set()
    try:
        finished = await common.wait_drained(
            dsn, probe, sample_connections=connections, procs=procs
        )
    finally:
        common.join_children(procs, stop)
    seconds = finished - started
    result = Result(name, count / seconds, seconds, max(connections, default=0), group)
    print(f"  {name}: {result.jobs_per_second:,.0f} jobs/s ({seconds:.2f}s)", flush=True)
    return result


async def run(
    count: int, slots: int, small_slots: int, ack_batch: int, raw_batch: int, only_ours: bool
) -> list[Result]:
    # (name, group, child, its arguments, processes), each on a fresh database
    runs: list[tuple[str, str, Callable[..., None], tuple[Any, ...], int]] = [
        (
            f"ours, {n} process{'es' if n > 1 else ''}, {pool} slots",
            f"ours {pool}",
            contenders.ours,
            (pool, ack_batch),
            n,
        )
        for pool in _pools(slots, small_slots)
        for n in (1, 2)
    ]
    if not only_ours:
        runs += [
            (f"pgqueuer batch {batch}, 2 processes", "pgqueuer", contenders.pgqueuer, (batch,), 2)
            for batch in (100, 500)
        ]
        raw = f"raw asyncpg loop, batch {raw_batch}, 2 processes"
        runs.append((raw, "raw", contenders.raw_loop, (raw_batch,), 2))
    results = []
    with common.server() as srv:
        for index, (name, group, child, child_args, processes) in enumerate(runs):
            ours_schema = child is not contenders.pgqueuer  # pgqueuer's run on its own schema
            database = f"bench_{child.__name__}_{index}"
            dsn = await common.fresh_database(srv, database, migrated=ours_schema)
            fill = fill_ours if ours_schema else contenders.pgqueuer_fill
            probe = common.SQL["jobs_left" if ours_schema else "pgqueuer_left"]
            results.append(
                await measure(name, dsn, count, fill, child, child_args, processes, probe, group)
            )
            if ours_schema:
                await check_all_completed(dsn, count)
    return results


async def check_all_completed(dsn: str, count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        done = await conn.fetchval(common.SQL["jobs_done"])
    finally:
        await conn.close()
    if done != count:
        raise SystemExit(f"only {done} of {count} jobs completed")


def _pools(slots: int, small_slots: int) -> list[int]:
    """Our pool sizes to run, largest first, each once (0: none)."""
    return sorted({pool for pool in (slots, small_slots) if pool > 0}, reverse=True)


def _best(results: list[Result], group: str) -> Result:
    return max((r for r in results if r.group == group), key=lambda r: r.jobs_per_second)


def report(results: list[Result], count: int, slots: int, small_slots: int) -> None:
    pgq = _best(results, "pgqueuer")
    raw = _best(results, "raw")
    rows = [("contender", "jobs/s", "seconds", "connections/process")]
    rows += [
        (r.name, f"{r.jobs_per_second:,.0f}", f"{r.seconds:.2f}", str(r.connections_per_process))
        for r in results
    ]
    common.print_table(f"Drain of {count:,} no-op jobs", rows)
    for pool in _pools(slots, small_slots):
        ours = _best(results, f"ours {pool}")
        print(f"\n  ours at {pool} slots (best, {ours.name}): {ours.jobs_per_second:,.0f} jobs/s")
        vs_pgqueuer = common.ratio(ours.jobs_per_second, pgq.jobs_per_second)
        print(f"    vs pgqueuer's best ({pgq.name}): {vs_pgqueuer}")
        print(f"    vs the raw loop: {common.ratio(ours.jobs_per_second, raw.jobs_per_second)}")
    ours_max = max(
        (r.connections_per_process for r in results if r.group.startswith("ours")), default=0
    )
    pgq_max = max(r.connections_per_process for r in results if r.group == "pgqueuer")
    print(f"  connections held per worker process (most seen): ours {ours_max}, pgqueuer {pgq_max}")
    print(f"  {GOALS}\n  machine: {common.machine_note()}")


def main() -> None:
    args = common.options(
        __doc__,
        "jobs slots ack_batch",
        raw_batch=(500, "the raw loop's batch"),
        small_slots=(32, "ours again at this MAX_CONCURRENT_JOBS (0: not)"),
        only_ours=(False, "skip the anchors (tuning)"),
    )
    results = asyncio.run(
        run(
            args.jobs,
            args.slots,
            args.small_slots,
            args.ack_batch,
            args.raw_batch,
            args.only_ours,
        )
    )
    if not args.only_ours:
        report(results, args.jobs, args.slots, args.small_slots)


if __name__ == "__main__":
    main()
