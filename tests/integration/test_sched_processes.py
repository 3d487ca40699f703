"""Exactly one job per tick with three `jobqueue worker` processes firing the same schedules,
across a SIGKILL and a restart: every tick from the first to the last has exactly one job.
(bench/bench_ticks.py is the three-minute version, with a `* * * * *` schedule as well.)"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import asyncpg

from tests.fixtures.processes import stop_process
from tests.integration.queue_support import eventually
from tests.integration.tick_support import TICK_FIELD, count_ticks
from worker.db.schedules import JobSpec, ScheduleDef, get_schedule, upsert_schedule
from worker.ticks import Timing

# The ticks' jobs go to a queue no worker serves, so they stay to be counted.
TICKS_QUEUE = "ticks"
SCHEDULER_ENV = {"JOBQUEUE_SCHEDULER_INTERVAL": "1"}


def schedule(name: str, timing: Timing) -> ScheduleDef:
    job = JobSpec("noop", queue_name=TICKS_QUEUE, tick_field=TICK_FIELD)
    return ScheduleDef(name=name, timing=timing, job=job)


async def test_three_processes_and_a_restart_enqueue_exactly_one_job_per_tick(
    pg_dsn: str, conn: asyncpg.Connection, workers: Any
) -> None:
    timings = {"every-second": Timing(every_seconds=1), "every-2.5s": Timing(every_seconds=2.5)}
    firsts = {}
    for name, timing in timings.items():
        await upsert_schedule(conn, schedule(name, timing))
        found = await get_schedule(conn, name)
        assert found is not None and found.next_run_at is not None
        firsts[name] = found.next_run_at

    async def ticks_so_far() -> int:
        return int(
            await conn.fetchval("SELECT count(*) FROM jobs WHERE queue_name = $1", TICKS_QUEUE)
        )

    procs = [workers(pg_dsn, **SCHEDULER_ENV) for _ in range(3)]
    await eventually(lambda: _more_than(ticks_so_far, 5), within=120, what="the first ticks")
    procs[0].send_signal(signal.SIGKILL)  # mid-pass or not: its transaction rolls back
    await asyncio.sleep(1.5)
    procs.append(workers(pg_dsn, **SCHEDULER_ENV))
    await eventually(lambda: _more_than(ticks_so_far, 16), within=120, what="more ticks")
    for proc in procs[1:]:
        stop_process(proc)

    for name, timing in timings.items():
        counted = await count_ticks(conn, name, timing, firsts[name])
        print(counted.summary())
        assert counted.exact, counted.summary()
        assert len(counted.expected) >= 3
        shown = await get_schedule(conn, name)
        assert shown is not None and shown.last_run_at == max(counted.jobs_per_tick)


async def _more_than(count: Any, n: int) -> bool:
    return bool(await count() > n)
