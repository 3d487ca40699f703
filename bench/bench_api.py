"""Benchmark of the REST API: a real `jobqueue api` (uvicorn) process, driven from this one.

    .venv/bin/python -m bench.bench_api              # throwaway PostgreSQL, durable commits
    .venv/bin/python -m bench.bench_api --stats-rows 200000 --seconds 5 --fast-db
    .venv/bin/python -m bench.bench_api --against 5aa7136 --rounds 5 --seconds 5  # A/B

Measures single-job POSTs per second (goal >= 3,000/s), jobs per second through the batch
endpoint (goal >= 50,000/s), and the stats endpoint's time on a table of --stats-rows jobs.
Everything (PostgreSQL, the API, this load generator) shares the machine. The load comes from
a minimal HTTP/1.1 client over keep-alive connections, so that the client costs little CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench import common
from jobqueue.dev.postgres import LocalPostgres
from tests.fixtures.processes import free_port
from tests.integration.api_support import SEED_JOB, api_process
from worker.db import claims, inspect
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue_many
from worker.db.migrate import migrate

JOBS = "/api/v1/queue/jobs"
SINGLE_GOAL = 3_000
BATCH_GOAL = 50_000

# A production-like server: commits are durable (fsync and synchronous_commit stay on).
DURABLE_OPTIONS = (
    "-c max_connections=300",
    "-c shared_buffers=256MB",
    "-c max_wal_size=4GB",
    "-c log_min_messages=warning",
)


@dataclass
class LoadResult:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    def count(self, status: int) -> int:
        return self.statuses[status]

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def http_request(method: str, path: str, host: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def drive(base_url: str, request: bytes, connections: int, seconds: float) -> LoadResult:
    """Each connection sends `request`, waits for the answer, and repeats until time is up."""
    parts = urlsplit(base_url)
    result = LoadResult()
    deadline = time.perf_counter() + seconds

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(request)
                status, _ = await read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    result.elapsed = time.perf_counter() - started
    return result


def tree_cpu_seconds(root: int | None) -> float:
    """User + system CPU of a process and its live descendants, from /proc (Linux)."""
    if root is None:
        return 0.0
    parents: dict[int, int] = {}
    cpu: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = int(fields[11]) + int(fields[12])  # utime, stime
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU the API, PostgreSQL and this load generator spend while a phase runs: the share of
    the machine's cores the API's work needs, whatever else runs on it."""

    api_pid: int
    postgres_pid: int | None

    def sample(self) -> tuple[float, float, float]:
        return (
            tree_cpu_seconds(self.api_pid),
            tree_cpu_seconds(self.postgres_pid),
            time.process_time(),
        )


def report_load(
    title: str,
    result: LoadResult,
    per_request: int,
    goal: int,
    cpu: tuple[float, float, float],
) -> None:
    jobs = result.count(201) * per_request
    rate = jobs / result.elapsed
    print(
        f"{title}: {rate:,.0f} jobs/s  (goal >= {goal:,}: {'met' if rate >= goal else 'NOT met'})"
        f"  requests={sum(result.statuses.values()):,} statuses={dict(result.statuses)}"
        f"  latency p50={result.percentile(0.5) * 1000:.1f}ms"
        f" p99={result.percentile(0.99) * 1000:.1f}ms"
    )
    if jobs:
        api, postgres, client = (seconds * 1000 * 1000 / jobs for seconds in cpu)
        per_thousand = api + postgres + client
        cores = os.cpu_count() or 1
        print(
            f"    CPU per 1,000 jobs: api {api:.1f}ms, postgres {postgres:.1f}ms,"
            f" load generator {client:.1f}ms; cores busy with these three:"
            f" {sum(cpu) / result.elapsed:.2f} of {cores}; with all {cores} to themselves:"
            f" ~{cores * 1000 * 1000 / per_thousand:,.0f} jobs/s"
        )


async def fill_table(dsn: str, rows: int) -> None:
    """Bring the table to `rows` jobs, most of them finished, as a busy system's table is:
    90% completed, 1% failed, the rest pending (a tenth of those scheduled for later)."""
    conn = await connect(dsn)
    try:
        have = (await inspect.stats_overview(conn, bound=rows + 1)).total.count or 0
        missing = max(0, rows - have)
        chunk = 50_000
        started = time.perf_counter()
        for offset in range(0, missing, chunk):
            size = min(chunk, missing - offset)
            jobs = [
                NewJob(
                    "noop",
                    {"n": offset + i},
                    queue_name=("default", "emails", "reports")[i % 3],
                    priority=i % 4,
                    delay_seconds=3600 if i % 100 == 0 else None,
                )
                for i in range(size)
            ]
            await enqueue_many(conn, jobs)
        worker = uuid.uuid4()
        to_finish = int(rows * 0.91)
        finished = 0
        while finished < to_finish:
            claimed = await claims.claim_jobs(
                conn, ["default", "emails", "reports"], min(chunk, to_finish - finished), worker, 60
            )
            if not claimed:
                break
            cut = len(claimed) * 90 // 91
            done, failed = claimed[:cut], claimed[cut:]
            await claims.complete_jobs(
                conn, worker, [j.id for j in done], [j.attempts for j in done], ["{}"] * len(done)
            )
            await claims.fail_jobs(
                conn,
                worker,
                [j.id for j in failed],
                [j.attempts for j in failed],
                ["bench"] * len(failed),
                [None] * len(failed),
            )
            finished += len(claimed)
        # what autovacuum does on its own on a busy table; done here so the run is repeatable
        await conn.execute("VACUUM ANALYZE jobs")
        print(f"filled the table to {rows:,} jobs in {time.perf_counter() - started:.0f}s")
    finally:
        await conn.close()


async def time_stats(base_url: str, dsn: str, repeats: int) -> None:
    conn = await connect(dsn)
    try:
        query_times = []
        for _ in range(repeats):
            started = time.perf_counter()
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                stats = await inspect.stats_overview(conn)
            query_times.append(time.perf_counter() - started)
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        http_times = await http_times_of(client, f"{JOBS}/stats/overview", repeats)
        body = (await client.get(f"{JOBS}/stats/overview")).json()
        kinds = {status: value["kind"] for status, value in body["by_status"].items()}
        print(
            f"stats overview at {stats.total.count:,} jobs ({stats.total.kind}):"
            f" queries median {statistics.median(query_times) * 1000:.1f}ms"
            f" max {max(query_times) * 1000:.1f}ms;"
            f" over HTTP median {statistics.median(http_times) * 1000:.1f}ms"
            f" max {max(http_times) * 1000:.1f}ms  (kinds: {kinds})"
        )
        # listing pages by id, newest first; a filter on a rare status reads further back
        for query in (
            "limit=50",
            "status=pending&limit=50",
            "status=failed&limit=50",
            "status=cancelled&limit=50",
            "queue_name=emails&job_type=noop&limit=50",
        ):
            times = await http_times_of(client, f"{JOBS}?{query}", 5)
            print(f"    GET /jobs?{query}: median {statistics.median(times) * 1000:.1f}ms")


async def http_times_of(client: httpx.AsyncClient, path: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = await client.get(path)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def postmaster_pid(data_dir: Path | None) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0]) if data_dir else None
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def database(args: argparse.Namespace) -> Iterator[tuple[str, int | None]]:
    """A fresh, migrated database and its server's pid when it runs here: on --dsn's server;
    with --fast-db on the tests' kind of server (no fsync); by default on a throwaway server
    with durable commits."""
    if args.dsn:
        yield args.dsn, None
        return
    if args.fast_db:
        with common.server() as srv:
            dsn = asyncio.run(common.fresh_database(srv, "bench_api", migrated=True))
            yield dsn, postmaster_pid(getattr(srv, "data", None))
        return
    with tempfile.TemporaryDirectory(prefix="jobqueue-bench-") as directory:
        os.chmod(directory, 0o755)
        local = LocalPostgres(
            Path(directory), port=free_port(), socket_dir=Path(directory), options=DURABLE_OPTIONS
        )
        local.init()
        local.start()
        try:
            local.psql("CREATE DATABASE bench")
            asyncio.run(migrate(local.dsn("bench")))
            yield local.dsn("bench"), postmaster_pid(local.data)
        finally:
            local.stop("immediate")


async def measured(
    meter: CpuMeter, base_url: str, request: bytes, connections: int, seconds: float
) -> tuple[LoadResult, tuple[float, float, float]]:
    before = meter.sample()
    result = await drive(base_url, request, connections, seconds)
    after = meter.sample()
    return result, (after[0] - before[0], after[1] - before[1], after[2] - before[2])


async def run(args: argparse.Namespace, dsn: str, base_url: str, meter: CpuMeter) -> None:
    host = urlsplit(base_url).netloc
    single = http_request("POST", JOBS, host, json.dumps(SEED_JOB).encode())
    batch_body = json.dumps(
        {
            "jobs": [
                {**SEED_JOB, "payload": {**SEED_JOB["payload"], "n": i}}
                for i in range(args.batch_size)
            ]
        }
    ).encode()
    batch = http_request("POST", f"{JOBS}/batch", host, batch_body)

    await drive(base_url, single, args.connections, 1.0)  # warm up connections and caches
    result, cpu = await measured(meter, base_url, single, args.connections, args.seconds)
    report_load(f"single POST ({args.connections} connections)", result, 1, SINGLE_GOAL, cpu)
    result, cpu = await measured(meter, base_url, batch, args.batch_connections, args.seconds)
    report_load(
        f"batch POST ({args.batch_size} jobs x {args.batch_connections} connections)",
        result,
        args.batch_size,
        BATCH_GOAL,
        cpu,
    )
    if args.stats_rows:
        await fill_table(dsn, args.stats_rows)
        await time_stats(base_url, dsn, repeats=20)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dsn", help="a migrated database to use (default: a throwaway server)")
    parser.add_argument(
        "--fast-db", action="store_true", help="the tests' server: fsync, synchronous_commit off"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per load phase")
    parser.add_argument("--connections", type=int, default=32, help="for single POSTs")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--stats-rows", type=int, default=1_000_000, help="0 skips the stats part")
    parser.add_argument(
        "--api-log", type=Path, default=Path(tempfile.gettempdir()) / "bench-api.log"
    )
    parser.add_argument(
        "--against", metavar="REV", help="A/B: this tree's API against REV's (bench_api_ab.py)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="with --against: rounds of both")
    args = parser.parse_args()
    if args.against:
        from bench.bench_api_ab import run_ab  # it builds on this module

        return run_ab(args)

    with database(args) as (dsn, postgres_pid):
        with api_process(
            dsn,
            args.api_log,
            JOBQUEUE_API_POOL_MAX="20",
            JOBQUEUE_API_WORKERS=str(args.api_workers),
        ) as api:
            base_url = api.url
            print(f"API at {base_url} (log: {args.api_log}); {os.cpu_count()} CPUs shared")
            asyncio.run(run(args, dsn, base_url, CpuMeter(api.proc.pid, postgres_pid)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
