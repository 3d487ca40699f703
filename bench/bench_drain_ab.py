"""Drain A/B: this tree's worker against an earlier commit's, alternating in one run, on the
same throwaway server, to find (or rule out) a regression.

    python bench/bench_drain_ab.py --against b95ed24 --jobs 100000 --rounds 3

Both run as real `python -m worker worker` processes (the seed's entry point, which every
commit has), each from its own tree (the earlier one extracted with `git archive`), on the
current schema, or with --own-schema each on the schema its own migrations make (which tells
a regression of the code from one of the schema: an index is paid for by every claim).

The workers start and register first; the jobs are then committed in one transaction, so the
clock measures the drain alone, not process start-up. Beside jobs/s (which a busy machine
blurs) it reports the CPU the workers and their PostgreSQL backends spent per 1,000 jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, SQL, fresh_database, machine_note, options, server, wait_drained
from tests.fixtures.processes import start_logged, stop_process
from worker.db.jobs import NewJob, enqueue_many

PACKAGES = ("worker", "controller", "jobqueue")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """user + system CPU of each process, from /proc; robust to a busy machine, unlike time."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    return found


async def _backends(conn: asyncpg.Connection) -> list[int]:
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid()"
    )
    return [row["pid"] for row in rows]


def extract(commit: str, into: Path) -> Path:
    present = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "--name-only", commit],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, *[p for p in PACKAGES if p in present]],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


async def _wait_registered(dsn: str, count: int, procs: list[subprocess.Popen[bytes]]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 120
        while await conn.fetchval("SELECT count(*) FROM workers") < count:
            if any(proc.poll() is not None for proc in procs) or time.monotonic() > deadline:
                raise RuntimeError("a worker did not start; see its log")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def _fill(dsn: str, count: int, chunk: int = 10_000) -> None:
    """All jobs become visible at once, when this one transaction commits."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for start in range(0, count, chunk):
                size = min(chunk, count - start)
                await enqueue_many(conn, [NewJob("noop") for _ in range(size)])
    finally:
        await conn.close()


@dataclass
class Drain:
    jobs_per_second: float
    worker_cpu_ms_per_1k: float  # the worker processes' CPU per 1,000 jobs
    server_cpu_ms_per_1k: float  # their PostgreSQL backends' CPU per 1,000 jobs


async def drain_once(
    srv: object, name: str, tree: Path, args: argparse.Namespace, logs: Path
) -> Drain:
    dsn = await fresh_database(srv, f"bench_ab_{name}", migrated=not args.own_schema)
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "DB_URL": dsn,
        "MAX_CONCURRENT_JOBS": str(args.slots),
        "WORKER_QUEUES": "default",
        "JOBQUEUE_ACK_BATCH_SIZE": str(args.ack_batch),
        "JOBQUEUE_WORKER_PORT": "0",
        "JOBQUEUE_RETENTION_SECONDS": "0",
    }
    if args.own_schema:  # each tree's own migrations: what a deployment of that commit runs on
        migrate = [sys.executable, "-m", "worker", "migrate"]
        await asyncio.to_thread(subprocess.run, migrate, env=env, cwd=tree, check=True)
    procs = [
        start_logged(
            [sys.executable, "-m", "worker", "worker"],
            logs / f"{name}-{i}.log",
            env={**env, "JOBQUEUE_WORKER_NAME": f"bench-{name}-{i}"},
            cwd=str(tree),
        )
        for i in range(args.processes)
    ]
    try:
        await _wait_registered(dsn, args.processes, procs)
        await _fill(dsn, args.jobs)
        probe = await asyncpg.connect(dsn)
        try:
            workers_before = cpu_seconds([proc.pid for proc in procs])
            server_before = cpu_seconds(await _backends(probe))
            started = time.monotonic()
            finished = await wait_drained(dsn, SQL["jobs_left"])
            workers_after = cpu_seconds([proc.pid for proc in procs])
            server_after = cpu_seconds(await _backends(probe))
        finally:
            await probe.close()
    finally:
        for proc in procs:
            stop_process(proc)
    conn = await asyncpg.connect(dsn)
    try:
        done = await conn.fetchval(SQL["jobs_done"])
    finally:
        await conn.close()
    if done != args.jobs:
        raise SystemExit(f"{name}: only {done} of {args.jobs} jobs completed")

    def used(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(after[pid] - before.get(pid, 0.0) for pid in after) * 1e6 / args.jobs

    return Drain(
        args.jobs / (finished - started),
        used(workers_before, workers_after),
        used(server_before, server_after),
    )


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        earlier = extract(args.against, Path(tmp))
        logs = Path(tmp) / "logs"
        logs.mkdir()
        trees = {args.against: earlier, "this tree": REPO}
        rates: dict[str, list[Drain]] = {name: [] for name in trees}
        with server() as srv:
            for round_ in range(args.rounds):
                order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                for name in order:
                    key = "earlier" if name == args.against else "current"
                    drain = await drain_once(srv, key, trees[name], args, logs)
                    rates[name].append(drain)
                    print(
                        f"  round {round_ + 1}, {name}: {drain.jobs_per_second:,.0f} jobs/s, "
                        f"CPU per 1k jobs: workers {drain.worker_cpu_ms_per_1k:.0f} ms, "
                        f"PostgreSQL {drain.server_cpu_ms_per_1k:.0f} ms",
                        flush=True,
                    )
    print(f"\nDrain of {args.jobs:,} no-op jobs, {args.processes} worker processes")
    for label, pick in (
        ("jobs/s", lambda d: d.jobs_per_second),
        ("worker CPU ms per 1k jobs", lambda d: d.worker_cpu_ms_per_1k),
        ("PostgreSQL CPU ms per 1k jobs", lambda d: d.server_cpu_ms_per_1k),
    ):
        anchor = [pick(d) for d in rates[args.against]]
        ours = [pick(d) for d in rates["this tree"]]
        per_round = [o / a if a else float("nan") for o, a in zip(ours, anchor, strict=True)]
        print(
            f"  {label}: {args.against} median {statistics.median(anchor):,.1f}, "
            f"this tree median {statistics.median(ours):,.1f}; this tree / {args.against} "
            "per round " + ", ".join(f"{r:.3f}" for r in per_round)
        )
    print(f"  machine: {machine_note()}")


def main() -> None:
    own_schema = "migrate each contender's database with its own tree (default: this tree's schema)"
    args = options(
        __doc__,
        "jobs rounds processes slots ack_batch",
        against=("b95ed24", "the earlier commit"),
        own_schema=(False, own_schema),
    )
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
