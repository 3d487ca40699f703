"""`bench_api --against REV`: this tree's API process against REV's, alternating in one run.

    .venv/bin/python -m bench.bench_api --against 5aa7136 --rounds 5 --seconds 5

Both API processes (REV's extracted with `git archive`) run at once on the same server and
database; round by round each takes the single-POST load and then the batch load, the order
swapped every round, so that a busy machine or a growing table weighs on both alike. Beside
jobs/s it reports the API process's CPU per 1,000 jobs, which other work on the machine
blurs less, and each round's ratio this tree / REV.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.bench_api import (
    JOBS,
    CpuMeter,
    database,
    drive,
    http_request,
    measured,
)
from bench.bench_drain_ab import extract
from bench.common import REPO, machine_note
from tests.integration.api_support import SEED_JOB, api_process

THIS_TREE = "this tree"


@dataclass
class Phase:
    jobs_per_second: float
    api_cpu_ms_per_1k: float
    postgres_cpu_ms_per_1k: float  # the server's, all of it: only one API has load at a time
    failures: int  # answers other than 201


def requests_for(base_url: str, batch_size: int) -> tuple[bytes, bytes]:
    """bench_api's two bodies: the seed's job, and a batch of it with one field more per job."""
    host = urlsplit(base_url).netloc
    single = http_request("POST", JOBS, host, json.dumps(SEED_JOB).encode())
    jobs = [{**SEED_JOB, "payload": {**SEED_JOB["payload"], "n": i}} for i in range(batch_size)]
    batch = http_request("POST", f"{JOBS}/batch", host, json.dumps({"jobs": jobs}).encode())
    return single, batch


async def phase(
    meter: CpuMeter,
    base_url: str,
    request: bytes,
    per_request: int,
    connections: int,
    seconds: float,
) -> Phase:
    result, cpu = await measured(meter, base_url, request, connections, seconds)
    jobs = result.count(201) * per_request
    return Phase(
        jobs / result.elapsed,
        cpu[0] * 1e6 / jobs if jobs else float("nan"),
        cpu[1] * 1e6 / jobs if jobs else float("nan"),
        sum(result.statuses.values()) - result.count(201),
    )


def summary(label: str, anchor: list[float], ours: list[float], against: str) -> str:
    per_round = [o / a if a else float("nan") for o, a in zip(ours, anchor, strict=True)]
    theirs_median, ours_median = statistics.median(anchor), statistics.median(ours)
    return (
        f"  {label}: {against} median {theirs_median:,.1f}, {THIS_TREE} median "
        f"{ours_median:,.1f}, ratio of medians {ours_median / theirs_median:.3f};"
        " per round " + ", ".join(f"{r:.3f}" for r in per_round)
    )


async def alternate(
    args: argparse.Namespace, urls: dict[str, str], meters: dict[str, CpuMeter]
) -> dict[tuple[str, str], list[Phase]]:
    bodies = {name: requests_for(url, args.batch_size) for name, url in urls.items()}
    for name, url in urls.items():  # warm up connections, caches and prepared statements
        await drive(url, bodies[name][0], args.connections, 1.0)
        await drive(url, bodies[name][1], args.batch_connections, 1.0)
    found: dict[tuple[str, str], list[Phase]] = {}
    for round_ in range(args.rounds):
        order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
        for name in order:
            single, batch = bodies[name]
            for kind, request, per, connections in (
                ("single", single, 1, args.connections),
                ("batch", batch, args.batch_size, args.batch_connections),
            ):
                got = await phase(meters[name], urls[name], request, per, connections, args.seconds)
                found.setdefault((name, kind), []).append(got)
                print(
                    f"  round {round_ + 1}, {name}, {kind}: {got.jobs_per_second:,.0f} jobs/s,"
                    f" CPU per 1k jobs: API {got.api_cpu_ms_per_1k:.1f} ms,"
                    f" PostgreSQL {got.postgres_cpu_ms_per_1k:.1f} ms"
                    + (f", {got.failures} answers not 201" if got.failures else ""),
                    flush=True,
                )
    return found


def run_ab(args: argparse.Namespace) -> int:
    against = args.against
    with tempfile.TemporaryDirectory(prefix="bench-api-ab-") as tmp, ExitStack() as stack:
        earlier = extract(against, Path(tmp))
        dsn, postgres_pid = stack.enter_context(database(args))
        trees = {against: earlier, THIS_TREE: REPO}
        urls: dict[str, str] = {}
        meters: dict[str, CpuMeter] = {}
        for name, tree in trees.items():
            log = Path(tmp) / f"api-{'earlier' if name == against else 'current'}.log"
            api = stack.enter_context(
                api_process(
                    dsn,
                    log,
                    cwd=tree,
                    PYTHONPATH=str(tree),
                    JOBQUEUE_API_POOL_MAX="20",
                    JOBQUEUE_API_WORKERS="1",
                )
            )
            urls[name], meters[name] = api.url, CpuMeter(api.proc.pid, postgres_pid)
        print(f"{against} at {urls[against]}, {THIS_TREE} at {urls[THIS_TREE]}; {machine_note()}")
        found = asyncio.run(alternate(args, urls, meters))
    for kind, what in (
        ("single", f"single POST ({args.connections} connections)"),
        ("batch", f"batch POST ({args.batch_size} jobs x {args.batch_connections} connections)"),
    ):
        print(f"\n{what}, {args.rounds} rounds of {args.seconds:g}s")
        anchor, ours = found[(against, kind)], found[(THIS_TREE, kind)]
        print(
            summary(
                "jobs/s",
                [p.jobs_per_second for p in anchor],
                [p.jobs_per_second for p in ours],
                against,
            )
        )
        for label, pick in (
            ("API CPU ms per 1k jobs", lambda p: p.api_cpu_ms_per_1k),
            ("PostgreSQL CPU ms per 1k jobs", lambda p: p.postgres_cpu_ms_per_1k),
        ):
            print(summary(label, [pick(p) for p in anchor], [pick(p) for p in ours], against))
    print(f"  machine: {machine_note()}")
    failures = sum(p.failures for phases in found.values() for p in phases)
    return 1 if failures else 0
