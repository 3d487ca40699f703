"""Soak: a steady offered rate (default 3,000 jobs/s) to 2 `jobqueue worker` processes with
retention pruning on, for N minutes. Each minute prints throughput, p50/p99 enqueue->start
latency, the jobs table and index size, dead tuples and the oldest xmin's age. A pressure phase
of 5 minutes in the middle (scaled down for short runs) holds an idle transaction open, pinning
the xmin horizon, as a forgotten BEGIN would.

    python -m bench.bench_soak --minutes 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database, machine_note, server
from tests.fixtures.processes import start_logged, stop_process
from worker.db.jobs import NewJob, enqueue_many_brief
from worker.db.sql_files import parse_named_statements

SQL = parse_named_statements((Path(__file__).parent / "sql" / "soak.sql").read_text())
REPO = Path(__file__).resolve().parents[1]
RETENTION_SECONDS = 120  # longer than a minute, so each minute's figures are still there


async def offer(dsn: str, rate: int, stop: asyncio.Event) -> None:
    """Enqueue `rate` jobs a second, in batches every 100 ms."""
    conn = await asyncpg.connect(dsn)
    batch = max(1, rate // 10)
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            await enqueue_many_brief(conn, [NewJob("noop") for _ in range(batch)])
            next_at += 0.1
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        await conn.close()


def _workers(dsn: str, workdir: Path) -> list[object]:
    script = Path(sys.executable).with_name("jobqueue")
    args = [str(script), "worker"] if script.exists() else [sys.executable, "-m", "worker"]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")},
        "PYTHONPATH": str(REPO),
        "DB_URL": dsn,
        "MAX_CONCURRENT_JOBS": "200",
        "JOBQUEUE_WORKER_PORT": "0",
        "JOBQUEUE_RETENTION_SECONDS": str(RETENTION_SECONDS),
        "JOBQUEUE_RETENTION_INTERVAL": "10",
    }
    return [
        start_logged(args, workdir / f"soak-worker-{n}.log", env=env, cwd=str(REPO))
        for n in range(2)
    ]


async def main(minutes: int, rate: int) -> None:
    pressure_len = 5 if minutes >= 15 else max(1, minutes // 3)
    pressure_from = (minutes - pressure_len) // 2
    with server() as srv:
        dsn = await fresh_database(srv, "soak", migrated=True)
        workdir = Path(os.environ.get("TMPDIR", "/tmp"))
        procs = _workers(dsn, workdir)
        stop = asyncio.Event()
        offering = asyncio.create_task(offer(dsn, rate, stop))
        stats = await asyncpg.connect(dsn)
        pin: asyncpg.Connection | None = None
        print(
            f"offered {rate} jobs/s to 2 workers for {minutes} min; pressure (an idle open "
            f"transaction) in minutes {pressure_from + 1}-{pressure_from + pressure_len}"
        )
        print("min  jobs/s  p50 ms  p99 ms  table MB  index MB  dead tup  xmin age  phase")
        try:
            for minute in range(minutes):
                pressure = pressure_from <= minute < pressure_from + pressure_len
                if pressure and pin is None:
                    pin = await asyncpg.connect(dsn)
                    await pin.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                    await pin.fetchval(SQL["soak_pin"])  # takes the snapshot, then idles
                if not pressure and pin is not None:
                    await pin.execute("ROLLBACK")
                    await pin.close()
                    pin = None
                await asyncio.sleep(60)
                done = await stats.fetchval(SQL["soak_completed"], 60.0)
                lat = await stats.fetchrow(SQL["soak_minute"], 60.0)
                size = await stats.fetchrow(SQL["soak_storage"])
                assert lat is not None and size is not None
                print(
                    f"{minute + 1:>3}  {done / 60:>6.0f}  {(lat['p50'] or 0) * 1000:>6.1f}  "
                    f"{(lat['p99'] or 0) * 1000:>6.1f}  {size['table_bytes'] / 2**20:>8.1f}  "
                    f"{size['index_bytes'] / 2**20:>8.1f}  {size['dead'] or 0:>8}  "
                    f"{size['oldest_xmin_age'] or 0:>8}  {'pressure' if pressure else ''}",
                    flush=True,
                )
        finally:
            stop.set()
            await offering
            if pin is not None:
                await pin.close()
            await stats.close()
            for proc in procs:
                stop_process(proc)  # type: ignore[arg-type]
    print(machine_note())


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--rate", type=int, default=3000, help="offered jobs per second")
    args = parser.parse_args()
    asyncio.run(main(args.minutes, args.rate))


if __name__ == "__main__":
    cli()
