"""Benchmark of the controller: reaction time and the depth probe's cost.

    .venv/bin/python -m bench.bench_controller                  # both parts
    .venv/bin/python -m bench.bench_controller --trials 9 --backlog 1000000
    .venv/bin/python -m bench.bench_controller --skip-reaction  # only the probe (no Kubernetes)

1. Reaction time: a real `jobqueue controller` process on a real kube-apiserver (the L3 control
   plane from tests/fixtures) and a throwaway PostgreSQL. Each trial starts from 0 replicas,
   enqueues a burst in one statement, and stops the clock when a watch on the apiserver shows
   the Deployment's replicas written through /scale. Anchor: KEDA's default worst case, a 30 s
   polling interval plus the HPA's 15 s sync (45 s). Goal: <= 2 s.
2. The depth probe at a backlog of --backlog ready jobs (goal <= 2 ms per probe), beside the
   count(*) a depth-polling scaler runs, whose cost grows with the backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubernetes_asyncio import client as kube
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio import watch

from bench import common
from controller import annotations as ann
from controller.depth import DepthSource
from controller.policy import ScalingConfig
from tests.fixtures.kube import ControlPlane
from tests.fixtures.postgres import PostgresServer, create_migrated_database
from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process, wait_until
from tests.fixtures.tools import REPO_ROOT, find_binary
from worker.db.claims import claim_jobs
from worker.db.connection import connect
from worker.db.jobs import NewJob, cancel_job, enqueue_many

KEDA_WORST_CASE = 30.0 + 15.0
REACTION_GOAL = 2.0
PROBE_GOAL_MS = 2.0
NAMESPACE = "bench"
DEPLOYMENT = "workers"
QUEUE = "bench"


@contextmanager
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@contextmanager
def control_plane() -> Iterator[ControlPlane]:
    binaries = {name: find_binary(name) for name in ("etcd", "kube-apiserver", "kubectl")}
    missing = [name for name, path in binaries.items() if path is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: build them with `bash tools/build-tools.sh`")
    plane = ControlPlane({name: path for name, path in binaries.items() if path is not None})
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


# ---------------------------------------------------------------- 1. reaction time
def _deployment() -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": DEPLOYMENT,
            "labels": {ann.AUTOSCALE_LABEL: "true"},
            "annotations": {ann.QUEUES: QUEUE, ann.SCALE_DOWN_DELAY: "0"},
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": DEPLOYMENT}},
            "template": {
                "metadata": {"labels": {"app": DEPLOYMENT}},
                "spec": {"containers": [{"name": "w", "image": "example.invalid/w:bench"}]},
            },
        },
    }


async def _replicas_reach(
    configuration: kube.Configuration, predicate, started: asyncio.Event
) -> float:
    """perf_counter() when a watch event shows replicas satisfying `predicate`."""
    selector = f"metadata.name={DEPLOYMENT}"
    async with kube.ApiClient(configuration) as api:
        apps = kube.AppsV1Api(api)
        listing = await apps.list_namespaced_deployment(NAMESPACE, field_selector=selector)
        async with watch.Watch() as stream:
            started.set()
            async for event in stream.stream(
                apps.list_namespaced_deployment,
                NAMESPACE,
                field_selector=selector,
                resource_version=listing.metadata.resource_version,
                timeout_seconds=120,
            ):
                if predicate(event["object"].spec.replicas or 0):
                    return time.perf_counter()
    raise TimeoutError("no scale seen within 120 s")


async def _trial(configuration: kube.Configuration, dsn: str, burst: int) -> float:
    started = asyncio.Event()
    seen = asyncio.create_task(_replicas_reach(configuration, lambda n: n > 0, started))
    await started.wait()
    await asyncio.sleep(0.2)  # the watch is open before the clock starts
    conn = await connect(dsn)
    try:
        t0 = time.perf_counter()
        jobs = await enqueue_many(conn, [NewJob("noop", queue_name=QUEUE) for _ in range(burst)])
        elapsed = await seen - t0
        # back to zero for the next trial: the jobs go, the delay is 0
        drained = asyncio.Event()
        back = asyncio.create_task(_replicas_reach(configuration, lambda n: n == 0, drained))
        await drained.wait()
        for job, _ in jobs:
            await cancel_job(conn, job.id)
        await back
    finally:
        await conn.close()
    return elapsed


async def reaction(
    plane: ControlPlane, dsn: str, trials: int, burst: int, workdir: Path
) -> list[float]:
    plane.create_namespace(NAMESPACE)
    plane.apply(_deployment(), NAMESPACE)
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(plane.kubeconfig),
        "DB_URL": dsn,
        "JOBQUEUE_CONTROLLER_NAMESPACES": NAMESPACE,
        "JOBQUEUE_CONTROLLER_PORT": str(port),
        "JOBQUEUE_CONTROLLER_IDENTITY": "bench",
    }  # everything else at its default: 1 s interval, 15 s lease
    log = workdir / "controller.log"
    proc = start_logged([sys.executable, "-m", "worker", "controller"], log, env=env, cwd=REPO_ROOT)
    configuration = kube.Configuration()
    await kube_config.load_kube_config(
        config_file=str(plane.kubeconfig), client_configuration=configuration
    )
    try:
        wait_until(
            lambda: (
                ann.STATUS
                in plane.kubectl(
                    "get",
                    "deployment",
                    DEPLOYMENT,
                    "-n",
                    NAMESPACE,
                    "-o",
                    "jsonpath={.metadata.annotations}",
                ).stdout
            ),
            timeout=60,
            what="the controller to manage the Deployment",
        )
        results = []
        for index in range(trials):
            seconds = await _trial(configuration, dsn, burst)
            results.append(seconds)
            print(f"  trial {index + 1}: {seconds * 1000:.0f} ms", flush=True)
        return results
    except BaseException:
        print(log_tail(log), file=sys.stderr)
        raise
    finally:
        stop_process(proc)


# ---------------------------------------------------------------- 2. the depth probe
async def _fill(dsn: str, backlog: int) -> None:
    conn = await connect(dsn)
    try:
        batch = 50_000
        for start in range(0, backlog, batch):
            count = min(batch, backlog - start)
            await enqueue_many(
                conn, [NewJob("noop", queue_name=QUEUE, priority=i % 3) for i in range(count)]
            )
        await enqueue_many(
            conn, [NewJob("noop", queue_name=QUEUE, delay_seconds=3600) for _ in range(1000)]
        )
        await claim_jobs(conn, [QUEUE], 200, uuid.uuid4(), 3600)
        await conn.execute("VACUUM ANALYZE jobs")  # maintenance autovacuum would have done by then
    finally:
        await conn.close()


async def _time(probe, rounds: int) -> list[float]:
    for _ in range(20):  # warm caches and asyncpg's statement cache
        await probe()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await probe()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


async def probe_cost(dsn: str, backlog: int, rounds: int) -> tuple[list[float], list[float], int]:
    t0 = time.perf_counter()
    await _fill(dsn, backlog)
    print(f"  filled {backlog:,} ready jobs in {time.perf_counter() - t0:.0f} s", flush=True)
    cap = ScalingConfig().depth_cap  # the defaults: 10 replicas x 10 jobs per replica + 1
    source = DepthSource(dsn)
    conn = await connect(dsn)
    try:
        depth = await source.depth([QUEUE], cap)
        capped = await _time(lambda: source.depth([QUEUE], cap), rounds)
        uncapped_sql = common.SQL["uncapped_ready_count"]
        total = await conn.fetchval(uncapped_sql, [QUEUE])
        uncapped = await _time(lambda: conn.fetchval(uncapped_sql, [QUEUE]), max(5, rounds // 20))
        print(
            f"  probe saw ready={depth.ready} running={depth.running} "
            f"oldest={depth.oldest_ready_seconds:.0f}s (cap {cap}); count(*) saw {total:,}"
        )
    finally:
        await conn.close()
        await source.close()
    return capped, uncapped, total


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(samples):.3f}, p95 {p95:.3f}, min {ordered[0]:.3f}"


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--skip-reaction", action="store_true")
    parser.add_argument("--skip-probe", action="store_true")
    args = parser.parse_args()
    ok = True
    with postgres() as server:
        if not args.skip_reaction:
            dsn = await create_migrated_database(server, "reaction")
            print(f"reaction time, burst of {args.burst} jobs, {args.trials} trials:", flush=True)
            with control_plane() as plane:
                seconds = await reaction(plane, dsn, args.trials, args.burst, plane.dir)
            median = statistics.median(seconds)
            print(
                f"reaction: median {median:.3f} s (min {min(seconds):.3f}, max {max(seconds):.3f}) "
                f"vs KEDA default worst case {KEDA_WORST_CASE:.0f} s; goal <= {REACTION_GOAL} s"
            )
            ok &= median <= REACTION_GOAL
        if not args.skip_probe:
            dsn = await create_migrated_database(server, "probe")
            print(f"depth probe at a backlog of {args.backlog:,} jobs:", flush=True)
            capped, uncapped, _ = await probe_cost(dsn, args.backlog, args.rounds)
            print(f"probe (capped, ms): {_summary(capped)}; goal <= {PROBE_GOAL_MS} ms")
            print(f"count(*) anchor (ms): {_summary(uncapped)}")
            ok &= statistics.median(capped) <= PROBE_GOAL_MS
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
