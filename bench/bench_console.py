"""The console's page times on a table of --rows jobs (the issue asks <= 50 ms at 1M), the
status filter before and after migration 0008's index, and that index's write cost.

    .venv/bin/python -m bench.bench_console                   # the issue's size: 1M jobs
    .venv/bin/python -m bench.bench_console --rows 20000 --write-jobs 5000   # a smoke run

Pages are timed over HTTP against a real `jobqueue api` process (median and max of
--repeats); the anchor is GET /livez on the same process, so the ratio says what a page costs
beyond an empty request. The table is filled as bench_api fills it (90% completed, 1% failed,
the rest pending; no cancelled job, the case that walked the primary key).

Write cost: the same enqueue, claim and complete cycle of --write-jobs jobs, in a fresh
database with the index and in one without it, alternated --write-rounds times; the best of
each is compared.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench import common
from bench.bench_api import fill_table, http_times_of
from tests.integration.api_support import api_process
from tests.integration.queue_support import complete_claimed
from worker.db import claims
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue_many
from worker.db.sql_files import parse_named_statements

SQL = parse_named_statements((Path(__file__).parent / "sql" / "console.sql").read_text())
GOAL_MS = 50.0
QUEUES = ["default", "emails", "reports"]


def pages(newest: int) -> list[str]:
    return [
        "/console",
        "/console/overview/queues",
        "/console/jobs",
        "/console/jobs?status=failed",
        "/console/jobs?status=cancelled",
        "/console/jobs?status=pending&queue=emails",
        "/console/jobs?status=completed&queue=reports",
        "/console/jobs?type=noop",
        f"/console/jobs?q={newest}",
        "/console/jobs?q=no-such-key",
        f"/console/jobs/{newest}",
        f"/console/jobs?before={newest // 2}",
        "/console/workers",
        "/console/schedules",
        "/console/scaling",
        "/api/v1/queue/jobs?status=cancelled&limit=50",
    ]


async def times_ms(client: httpx.AsyncClient, path: str, repeats: int) -> list[float]:
    (await client.get(path)).raise_for_status()  # warm: plans and caches
    return [seconds * 1000 for seconds in await http_times_of(client, path, repeats)]


async def time_pages(base_url: str, dsn: str, repeats: int) -> None:
    conn = await connect(dsn)
    try:
        newest = int(await conn.fetchval(SQL["newest_job"]))
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        anchor = statistics.median(await times_ms(client, "/livez", repeats))
        print(f"anchor GET /livez: median {anchor:.1f} ms")
        worst = 0.0
        for path in pages(newest):
            found = await times_ms(client, path, repeats)
            median = statistics.median(found)
            worst = max(worst, median)
            flag = "" if median <= GOAL_MS else f"  OVER {GOAL_MS:.0f} ms"
            print(
                f"  {path:50s} median {median:6.1f} ms  max {max(found):6.1f} ms"
                f"  ({median / anchor:5.1f}x anchor){flag}"
            )
        print(f"slowest page median: {worst:.1f} ms (goal <= {GOAL_MS:.0f} ms)")


async def status_filter_without_index(base_url: str, dsn: str, repeats: int) -> None:
    path = "/api/v1/queue/jobs?status=cancelled&limit=50"
    conn = await connect(dsn)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            with_index = statistics.median(await times_ms(client, path, repeats))
            await conn.execute(SQL["drop_status_index"])
            try:
                without = statistics.median(await times_ms(client, path, repeats))
            finally:
                await conn.execute(SQL["create_status_index"])
    finally:
        await conn.close()
    print(
        f"GET {path}: {without:.1f} ms without 0008's index, {with_index:.1f} ms with it"
        f" ({without / with_index:.0f}x faster)"
    )


async def write_cycle(dsn: str, jobs: int) -> tuple[float, int | None]:
    """Enqueue `jobs` in batches of 500, then claim and complete them as a worker does;
    returns the seconds taken and the status index's pages afterwards."""
    conn = await connect(dsn)
    try:
        started = time.perf_counter()
        for offset in range(0, jobs, 500):
            batch = [
                NewJob("noop", {"n": offset + i}, queue_name=QUEUES[i % 3])
                for i in range(min(500, jobs - offset))
            ]
            await enqueue_many(conn, batch)
        worker = uuid.uuid4()
        while claimed := await claims.claim_jobs(conn, QUEUES, 500, worker, 60):
            await complete_claimed(conn, worker, claimed)
        elapsed = time.perf_counter() - started
        return elapsed, await conn.fetchval(SQL["status_index_size"])
    finally:
        await conn.close()


async def write_cost(srv: object, jobs: int, rounds: int) -> None:
    best: dict[str, float] = {"with": float("inf"), "without": float("inf")}
    pages = None
    for round_number in range(rounds):
        for variant in ("without", "with") if round_number % 2 else ("with", "without"):
            dsn = await common.fresh_database(srv, f"bench_console_{variant}", migrated=True)
            if variant == "without":
                conn = await connect(dsn)
                await conn.execute(SQL["drop_status_index"])
                await conn.close()
            seconds, size = await write_cycle(dsn, jobs)
            print(f"    round {round_number} {variant}: {seconds:.2f} s")
            best[variant] = min(best[variant], seconds)
            pages = size if variant == "with" else pages
    ratio = best["with"] / best["without"]
    print(
        f"write cost of 0008's index, {jobs:,} jobs enqueued, claimed and completed:"
        f" {best['without']:.2f} s without, {best['with']:.2f} s with"
        f" ({(ratio - 1) * 100:+.1f}%, {jobs / best['without']:,.0f} vs"
        f" {jobs / best['with']:,.0f} jobs/s); the partial index holds {pages} page(s)"
        " afterwards (1 = only its metapage: the cycle wrote no entry to it)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--write-jobs", type=int, default=100_000, help="0 skips the write cost")
    parser.add_argument("--write-rounds", type=int, default=3)
    parser.add_argument(
        "--api-log", type=Path, default=Path(tempfile.gettempdir()) / "bench-console.log"
    )
    args = parser.parse_args()
    with common.server() as srv:
        dsn = asyncio.run(common.fresh_database(srv, "bench_console", migrated=True))
        asyncio.run(fill_table(dsn, args.rows))

        async def seed() -> None:
            conn = await connect(dsn)
            try:
                await conn.execute(SQL["seed_console_rows"])
            finally:
                await conn.close()

        asyncio.run(seed())
        with api_process(dsn, args.api_log, JOBQUEUE_API_POOL_MAX="4") as api:
            asyncio.run(time_pages(api.url, dsn, args.repeats))
            asyncio.run(status_filter_without_index(api.url, dsn, max(5, args.repeats // 4)))
        if args.write_jobs:
            asyncio.run(write_cost(srv, args.write_jobs, args.write_rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
