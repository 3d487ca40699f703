"""Tick exactness: a `* * * * *` schedule and a 1 s interval schedule, fired by three
`jobqueue worker` processes for --minutes (one of them SIGKILLed and replaced halfway), then
every tick counted: the anchor is the number of ticks the clock gave, the figure the jobs the
schedulers enqueued; exact means one job for every tick, none doubled, none missing.

    python bench/bench_ticks.py --minutes 3
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database, machine_note, options, print_table, server
from tests.fixtures.processes import log_tail, stop_process
from tests.integration.queue_support import start_worker_process
from tests.integration.tick_support import TICK_FIELD, count_ticks
from worker.db.schedules import JobSpec, ScheduleDef, get_schedule, upsert_schedule
from worker.ticks import Timing

TIMINGS = {"every-minute": Timing(cron="* * * * *"), "every-second": Timing(every_seconds=1)}


async def run(minutes: float, processes: int) -> bool:
    with server() as srv, tempfile.TemporaryDirectory(prefix="bench-ticks-") as logs:
        dsn = await fresh_database(srv, "bench_ticks", migrated=True)
        conn = await asyncpg.connect(dsn)
        firsts = {}
        for name, timing in TIMINGS.items():
            job = JobSpec("noop", queue_name="ticks", tick_field=TICK_FIELD)
            await upsert_schedule(conn, ScheduleDef(name, timing, job))
            found = await get_schedule(conn, name)
            assert found is not None and found.next_run_at is not None
            firsts[name] = found.next_run_at
        env = {"WORKER_QUEUES": "ticks", "JOBQUEUE_SCHEDULER_INTERVAL": "1"}
        log_dir = Path(logs)
        procs = [start_worker_process(dsn, log_dir / f"w{i}.log", **env) for i in range(processes)]
        seconds = minutes * 60
        started = time.monotonic()
        await asyncio.sleep(seconds / 2)
        procs[0].send_signal(signal.SIGKILL)
        procs.append(start_worker_process(dsn, log_dir / "w-restarted.log", **env))
        await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
        stopped_at = datetime.now(UTC)
        for proc in procs:
            stop_process(proc)
        rows = [("schedule", "ticks (anchor)", "jobs", "ratio", "doubled", "missing", "late")]
        exact = True
        for name, timing in TIMINGS.items():
            counted = await count_ticks(conn, name, timing, firsts[name])
            # ticks more than 3 s before the stop that never got a job are missing too
            due = timing.latest_at_or_before(stopped_at - timedelta(seconds=3))
            tail = [t for t in _ticks(timing, firsts[name], due) if t not in counted.expected]
            jobs = sum(counted.jobs_per_tick.values())
            anchor = len(counted.expected) + len(tail)
            ok = counted.exact and not tail
            exact = exact and ok
            shown = f"{jobs / anchor:.3f}x" if anchor else "-"
            missed = (str(len(counted.doubled)), str(len(counted.missing)), str(len(tail)))
            rows.append((name, str(anchor), str(jobs), shown, *missed))
        await conn.close()
        print_table(
            f"Tick exactness: {processes} worker processes for {minutes:g} min, one SIGKILLed "
            "and replaced halfway",
            rows,
        )
        print(f"\n  exact: {'yes' if exact else 'NO'}\n  machine: {machine_note()}")
        if not exact:
            _print_logs(log_dir)
        return exact


def _print_logs(log_dir: Path) -> None:
    for path in sorted(log_dir.glob("*.log")):
        print(f"--- {path.name}\n{log_tail(path)}")


def _ticks(timing: Timing, first: datetime, last: datetime) -> list[datetime]:
    out, tick = [], first
    while tick <= last:
        out.append(tick)
        tick = timing.next_after(tick)
    return out


def main() -> None:
    args = options(__doc__, minutes=(3.0, "how long the workers run"), processes=3)
    sys.exit(0 if asyncio.run(run(args.minutes, args.processes)) else 1)


if __name__ == "__main__":
    main()
