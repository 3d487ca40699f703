"""Drain throughput with 100 schedules defined against the same drain without any: the
scheduler's passes run in every worker process, so they must not slow the hot path. Rounds
alternate (without, with, without, with, ...) on one throwaway server; the figures are the
ratios of the best rounds and of the medians (the issue asks for within 5%).

    python bench/bench_drain_schedules.py --jobs 100000 --schedules 100 --rounds 3
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from pathlib import Path

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import contenders
from bench.bench_drain import Result, fill_ours, measure
from bench.common import SQL, fresh_database, machine_note, options, print_table, server
from worker.db.schedules import JobSpec, ScheduleDef, upsert_schedule
from worker.ticks import Timing


async def define_schedules(dsn: str, count: int) -> None:
    """Schedules that fire during the drain (every 5 s), into a queue nobody drains."""
    conn = await asyncpg.connect(dsn)
    try:
        for i in range(count):
            job = JobSpec("noop", queue_name="scheduled", tick_field="tick")
            timing = Timing(every_seconds=5) if i % 2 else Timing(cron="* * * * *")
            await upsert_schedule(conn, ScheduleDef(f"bench-{i}", timing, job))
    finally:
        await conn.close()


async def check_drained(dsn: str, count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        done = await conn.fetchval(SQL["default_jobs_done"])
    finally:
        await conn.close()
    if done != count:
        raise SystemExit(f"only {done} of {count} jobs completed")


async def run(count: int, schedules: int, rounds: int, slots: int, ack_batch: int) -> None:
    best: dict[int, Result] = {}
    rates: dict[int, list[float]] = {0: [], schedules: []}
    with server() as srv:
        for round_ in range(rounds):
            for defined in (0, schedules):
                dsn = await fresh_database(srv, f"bench_sched_{round_}_{defined}", migrated=True)
                await define_schedules(dsn, defined)
                result = await measure(
                    f"ours, 2 processes, {defined} schedules (round {round_ + 1})",
                    dsn,
                    count,
                    fill_ours,
                    contenders.ours,
                    (slots, ack_batch),
                    2,
                    SQL["default_jobs_left"],
                )
                await check_drained(dsn, count)
                rates[defined].append(result.jobs_per_second)
                if defined not in best or result.jobs_per_second > best[defined].jobs_per_second:
                    best[defined] = result
    without, with_ = best[0], best[schedules]
    rows = [("run", "jobs/s", "seconds")]
    rows += [(r.name, f"{r.jobs_per_second:,.0f}", f"{r.seconds:.2f}") for r in (without, with_)]
    print_table(f"Drain of {count:,} no-op jobs, best of {rounds} rounds", rows)
    print(
        f"\n  with {schedules} schedules vs without: "
        f"{with_.jobs_per_second / without.jobs_per_second:.3f}x best, "
        f"{statistics.median(rates[schedules]) / statistics.median(rates[0]):.3f}x median "
        "(goal: within 5%)"
    )
    print(f"  machine: {machine_note()}")


def main() -> None:
    args = options(__doc__, "jobs rounds slots ack_batch", schedules=(100, "schedules to define"))
    asyncio.run(run(args.jobs, args.schedules, args.rounds, args.slots, args.ack_batch))


if __name__ == "__main__":
    main()
