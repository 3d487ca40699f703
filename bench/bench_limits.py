"""What limits cost the claim: drain N no-op jobs with our workers with no limits, then with a
per-queue concurrency limit set too high to bind (and a per-key limit over keyed jobs), on the
same throwaway server in one run. Rounds rotate the order of the variants, so drift and warm-up
hit each alike.

    python bench/bench_limits.py --jobs 100000 --rounds 3
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import contenders
from bench.bench_drain import check_all_completed, fill_ours, measure
from bench.common import SQL, fresh_database, machine_note, options, print_table, ratio, server
from worker.db import limits
from worker.db.jobs import NewJob, enqueue_many

GOAL = "goal: a limit that does not bind costs at most 10% of the drain rate"
KEYS = 100


async def fill_keyed(dsn: str, count: int, chunk: int = 10_000) -> None:
    """As fill_ours, with each job's concurrency key one of KEYS tenants, round robin."""
    conn = await asyncpg.connect(dsn)
    try:
        for start in range(0, count, chunk):
            batch = range(start, min(start + chunk, count))
            await enqueue_many(
                conn, [NewJob("noop", concurrency_key=f"tenant-{i % KEYS}") for i in batch]
            )
    finally:
        await conn.close()


async def set_limits(dsn: str, change: limits.LimitChange) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await limits.set_limits(conn, "default", change)
    finally:
        await conn.close()


Variant = tuple[str, Callable[[str, int], Awaitable[None]], limits.LimitChange | None]


def variants(slots: int, processes: int) -> list[Variant]:
    roomy = 10 * slots * processes  # far above what the workers can run at once
    return [
        ("no limits", fill_ours, None),
        (f"no limits, jobs over {KEYS} keys", fill_keyed, None),
        (f"concurrency limit {roomy}", fill_ours, limits.LimitChange(concurrency_limit=roomy)),
        (
            f"limit {roomy}, per-key limit {roomy} over {KEYS} keys",
            fill_keyed,
            limits.LimitChange(concurrency_limit=roomy, key_concurrency_limit=roomy),
        ),
    ]


async def run(count: int, slots: int, ack_batch: int, processes: int, rounds: int) -> None:
    rates: dict[str, list[float]] = {}
    with server() as srv:
        every = list(enumerate(variants(slots, processes)))
        for round_no in range(rounds):
            turn = round_no % len(every)  # each round starts with another variant
            for index, (name, fill, change) in every[turn:] + every[:turn]:
                dsn = await fresh_database(srv, f"bench_limits_{index}", migrated=True)
                if change is not None:
                    await set_limits(dsn, change)
                result = await measure(
                    f"{name} (round {round_no + 1})",
                    dsn,
                    count,
                    fill,
                    contenders.ours,
                    (slots, ack_batch),
                    processes,
                    SQL["jobs_left"],
                )
                await check_all_completed(dsn, count)
                rates.setdefault(name, []).append(result.jobs_per_second)
    anchor = statistics.median(rates["no limits"])
    rows = [("variant", "median jobs/s", "runs", "vs no limits")]
    for name, values in rates.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:,.0f}" for v in values)
        rows.append((name, f"{median:,.0f}", runs, ratio(median, anchor)))
    print_table(
        f"Drain of {count:,} no-op jobs, {processes} worker processes x {slots} slots", rows
    )
    print(f"  {GOAL}\n  machine: {machine_note()}")


def main() -> None:
    args = options(__doc__, "jobs slots ack_batch processes rounds")
    asyncio.run(run(args.jobs, args.slots, args.ack_batch, args.processes, args.rounds))


if __name__ == "__main__":
    main()
