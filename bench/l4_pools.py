"""What the capacity benchmarks share: the L4 control plane (kube-apiserver, kube-controller-
manager, kube-scheduler and kwok) with worker Deployments whose pods are real local `jobqueue
worker` processes (tests/fixtures/pod_runner), our controller as a process, and one burst
measured from the commit of its enqueue to the pool back at zero.

The figures of a burst: time to the first scale-up, to the first job started, to drain (last
job finished) and back to zero (no replicas and no process left); peak replicas; replica-seconds;
jobs that were running on a pod when it was deleted; and the most database connections held by
the scaler (client connections that are neither a worker's nor the benchmark's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from bench import burst_timeline as timeline
from bench import common
from controller import annotations as ann
from tests.fixtures.kube import ControlPlane
from tests.fixtures.pod_runner import PodRunner
from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process
from tests.fixtures.tools import REPO_ROOT, find_binary
from worker.db.jobs import NewJob, enqueue_many
from worker.db.sql_files import parse_named_statements

SQL = parse_named_statements((Path(__file__).parent / "sql" / "pools.sql").read_text())
NAMESPACE = "bench"
JOB_TYPE = "bench_sleep"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kubectl",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)
SAMPLE_EVERY = 0.2


@dataclass(frozen=True)
class PoolSpec:
    name: str
    queue: str
    concurrency: int = 5
    max_replicas: int = 10
    annotations: dict[str, str] = field(default_factory=dict)
    ours: bool = True  # labelled for our controller; False: another scaler's


def worker_deployment(spec: PoolSpec, dsn: str) -> dict[str, Any]:
    env = {
        "DB_URL": dsn,
        "WORKER_QUEUES": spec.queue,
        "MAX_CONCURRENT_JOBS": str(spec.concurrency),
        "POLL_INTERVAL": "0.5",
        "JOBQUEUE_HANDLER_MODULES": "bench.bench_handlers",
        "JOBQUEUE_HEARTBEAT_SECONDS": "1",
        "JOBQUEUE_DRAIN_TIMEOUT": "15",
        "JOBQUEUE_LOG_FORMAT": "plain",
    }
    labels = {ann.AUTOSCALE_LABEL: "true"} if spec.ours else {}
    annotations = {ann.QUEUES: spec.queue, ann.MAX_REPLICAS: str(spec.max_replicas)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": {**annotations, **spec.annotations} if spec.ours else {},
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": spec.name}},
            "template": {
                "metadata": {"labels": {"app": spec.name}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 20,
                    "containers": [
                        {
                            "name": "worker",
                            "image": "example.invalid/worker:bench",
                            "command": ["jobqueue"],
                            "args": ["worker"],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                        }
                    ],
                },
            },
        },
    }


@dataclass
class Burst:
    """One burst's figures, seconds after the enqueue committed."""

    jobs: int
    first_scale_up: float | None = None
    first_started: float | None = None
    drained: float | None = None
    back_to_zero: float | None = None
    peak_replicas: int = 0
    replica_seconds: float = 0.0
    jobs_on_deleted_pods: int = 0
    scaler_connections: int = 0
    completed: int = 0
    # where the seconds to the first job went (bench.burst_timeline.PHASES), after the commit
    timeline: dict[str, float] = field(default_factory=dict)

    @property
    def zero_after_last_job(self) -> float | None:
        """From the last job's finish to no replica and no process left."""
        if self.back_to_zero is None or self.drained is None:
            return None
        return self.back_to_zero - self.drained


@dataclass
class Stack:
    plane: ControlPlane
    dsn: str
    log_dir: Path
    runners: list[PodRunner] = field(default_factory=list)
    _apps: Any = None
    replicas_watch: timeline.ReplicasWatch | None = None
    controller_port: int | None = None  # ours, for its own cold-start metrics

    def add_pool(self, spec: PoolSpec) -> PodRunner:
        self.plane.apply(worker_deployment(spec, self.dsn), NAMESPACE)
        runner = PodRunner(self.plane, NAMESPACE, f"app={spec.name}", log_dir=self.log_dir)
        runner.start()
        self.runners.append(runner)
        return runner

    def replicas(self, name: str) -> int:
        if self._apps is None:
            api = kube_config.new_client_from_config(str(self.plane.kubeconfig))
            self._apps = kube_client.AppsV1Api(api)
        scale: Any = self._apps.read_namespaced_deployment_scale(name, NAMESPACE)
        return int(scale.spec.replicas or 0)


def _binaries() -> dict[str, Path]:
    found = {name: find_binary(name) for name in BINARIES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: build them with `bash tools/build-tools.sh`")
    return {name: path for name, path in found.items() if path is not None}


@contextlib.contextmanager
def control_plane(
    *, aggregation: bool = False, extra: Sequence[str] = ()
) -> Iterator[ControlPlane]:
    binaries = _binaries()
    for name in extra:
        path = find_binary(name)
        if path is None:
            sys.exit(f"missing {name}: build it with `bash tools/build-tools.sh --keda`")
        binaries[name] = path
    plane = ControlPlane(binaries, aggregation=aggregation)
    try:
        plane.start()
        plane.start_workloads()
        plane.create_namespace(NAMESPACE)
        yield plane
    finally:
        plane.stop()


@contextlib.asynccontextmanager
async def stack(plane: ControlPlane, log_dir: Path) -> AsyncIterator[Stack]:
    with common.server() as server:
        dsn = await common.fresh_database(server, f"pools_{uuid.uuid4().hex[:8]}", migrated=True)
        watch = timeline.ReplicasWatch(str(plane.kubeconfig), NAMESPACE).start()
        built = Stack(plane, dsn, log_dir, replicas_watch=watch)
        try:
            yield built
        finally:
            watch.stop()
            for runner in built.runners:
                runner.stop()


@contextlib.contextmanager
def our_controller(plane: ControlPlane, dsn: str, log_dir: Path, **env: str) -> Iterator[int]:
    """`jobqueue controller` with the admin kubeconfig, watching the bench namespace; yields
    the port of its /metrics."""
    port = free_port()
    settings = {
        **os.environ,
        "KUBECONFIG": str(plane.kubeconfig),
        # named, so the benchmark tells its connection from another scaler's
        "DB_URL": f"{dsn}{'&' if '?' in dsn else '?'}application_name=jobqueue-controller",
        "JOBQUEUE_CONTROLLER_NAMESPACES": NAMESPACE,
        "JOBQUEUE_CONTROLLER_LEASE_NAMESPACE": NAMESPACE,
        "JOBQUEUE_CONTROLLER_PORT": str(port),
        "JOBQUEUE_CONTROLLER_IDENTITY": "bench-controller",
        "JOBQUEUE_LOG_FORMAT": "plain",
        **env,
    }
    log = log_dir / "controller.log"
    proc = start_logged(
        [sys.executable, "-m", "worker", "controller"], log, env=settings, cwd=REPO_ROOT
    )
    try:
        yield port
    finally:
        stop_process(proc)
        if proc.returncode not in (0, -15, None):
            print(log_tail(log, 30), file=sys.stderr)


async def settle_at_zero(
    built: Stack, spec: PoolSpec, runner: PodRunner, quiet: float = 5.0, within: float = 300.0
) -> None:
    """Returns once the pool has had no replica and no process for `quiet` seconds."""
    deadline, since = time.monotonic() + within, None
    while time.monotonic() < deadline:
        idle = await asyncio.to_thread(built.replicas, spec.name) == 0
        if idle and runner.process_count() == 0:
            since = since or time.monotonic()
            if time.monotonic() - since >= quiet:
                return
        else:
            since = None
        await asyncio.sleep(SAMPLE_EVERY)
    raise RuntimeError(f"{spec.name} did not settle at zero replicas within {within:.0f} s")


async def _bench_connection(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, server_settings={"application_name": "bench"})


async def run_burst(
    built: Stack,
    spec: PoolSpec,
    runner: PodRunner,
    durations: Sequence[float],
    *,
    within: float = 900.0,
) -> Burst:
    """Enqueue one job per duration in one statement, then sample until the pool is back at
    zero (or `within` seconds pass, when back_to_zero stays None)."""
    conn = await _bench_connection(built.dsn)
    try:
        jobs = [NewJob(JOB_TYPE, {"seconds": s}, queue_name=spec.queue) for s in durations]
        async with conn.transaction():
            created = await enqueue_many(conn, jobs)
        committed_at: datetime = await conn.fetchval("SELECT clock_timestamp()")
        first_id = min(job.id for job, _ in created)
        t0, wall0 = time.monotonic(), committed_at.timestamp()
        burst = Burst(len(jobs))
        workers: dict[str, tuple[uuid.UUID, Any]] = {}
        previous = t0
        while time.monotonic() - t0 < within:
            now = time.monotonic()
            elapsed = now - t0
            replicas = await asyncio.to_thread(built.replicas, spec.name)
            row = await conn.fetchrow(SQL["sample_burst"], spec.queue, first_id)
            assert row is not None
            for worker in await conn.fetch(SQL["select_workers"]):
                if worker["startup"] is not None or worker["name"] not in workers:
                    workers[worker["name"]] = (worker["id"], worker["startup"])
            held = row["controller_connections" if spec.ours else "other_connections"]
            burst.scaler_connections = max(burst.scaler_connections, held)
            burst.peak_replicas = max(burst.peak_replicas, replicas)
            burst.replica_seconds += replicas * (now - previous)
            previous = now
            if replicas > 0 and burst.first_scale_up is None:
                burst.first_scale_up = elapsed
            if burst.drained is None and row["finished"] >= len(jobs):
                burst.drained = elapsed
            if burst.drained is not None and replicas == 0 and runner.process_count() == 0:
                burst.back_to_zero = elapsed
                break
            await asyncio.sleep(SAMPLE_EVERY)
        times = await conn.fetchrow(SQL["burst_times"], spec.queue, committed_at, first_id)
        assert times is not None
        burst.first_started = times["first_started"]
        if times["last_finished"] is not None and burst.drained is not None:
            burst.drained = times["last_finished"]
        burst.completed = times["completed"]
        names = {name: worker_id for name, (worker_id, _) in workers.items()}
        burst.jobs_on_deleted_pods = await _jobs_on_deleted_pods(
            conn, spec, runner, names, first_id, wall0
        )
        burst.timeline = _timeline(built, spec, runner, workers, wall0, times)
        if burst.timeline.get("scaled") is not None:
            burst.first_scale_up = burst.timeline["scaled"]  # the watch's, finer than a sample
        return burst
    finally:
        await conn.close()


def _timeline(
    built: Stack,
    spec: PoolSpec,
    runner: PodRunner,
    workers: dict[str, tuple[uuid.UUID, Any]],
    committed: float,
    times: asyncpg.Record,
) -> dict[str, float]:
    watch = built.replicas_watch
    controller = None
    if spec.ours and built.controller_port is not None:
        controller = timeline.controller_cold_start(built.controller_port, spec.name)
    first_job = times["first_started"]
    return timeline.burst_phases(
        committed,
        scaled=watch.first_up(spec.name, committed) if watch else None,
        pod_created=timeline.first_after(runner.watch.history, "ADDED", committed),
        container_started=timeline.first_after(runner.events, "start", committed),
        startup=timeline.first_startup(
            {name: startup for name, (_, startup) in workers.items() if startup}, committed
        ),
        first_job=None if first_job is None else committed + first_job,
        controller=controller,
        run_at=times["run_at"],
    )


async def _jobs_on_deleted_pods(
    conn: asyncpg.Connection,
    spec: PoolSpec,
    runner: PodRunner,
    names: dict[str, uuid.UUID],
    first_id: int,
    since: float,
) -> int:
    deleted = [
        (names[pod], at)
        for at, kind, pod in runner.events
        if kind == "sigterm" and pod in names and at >= since
    ]
    if not deleted:
        return 0
    ids = [worker for worker, _ in deleted]
    moments = [datetime.fromtimestamp(at, UTC) for _, at in deleted]
    found = await conn.fetchval(SQL["jobs_on_deleted_pods"], spec.queue, ids, moments, first_id)
    return int(found)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def burst_rows(
    named: Sequence[tuple[str, Burst]], anchor: Burst | None = None
) -> list[tuple[str, ...]]:
    """One column per burst, one row per figure; with an anchor, a ratio after each figure."""
    header = ("", *[name for name, _ in named])
    figures: list[tuple[str, Any]] = [
        ("time to first scale-up", lambda b: b.first_scale_up),
        ("time to first job started", lambda b: b.first_started),
        ("peak replicas", lambda b: b.peak_replicas),
        ("time to drain", lambda b: b.drained),
        ("time back to zero", lambda b: b.back_to_zero),
        ("replica-seconds", lambda b: b.replica_seconds),
        ("jobs running on a deleted pod", lambda b: b.jobs_on_deleted_pods),
        ("scaler's DB connections (peak)", lambda b: b.scaler_connections),
        ("jobs completed", lambda b: b.completed),
    ]
    rows: list[tuple[str, ...]] = [header]
    for label, get in figures:
        cells = []
        for _, burst in named:
            value = get(burst)
            text = (
                str(value)
                if isinstance(value, int)
                else seconds(value)
                if label.startswith("time")
                else f"{value:.0f}"
            )
            base = get(anchor) if anchor is not None else None
            # a ratio to a time under a sample's length says nothing
            meaningful = base and (not label.startswith("time") or base >= 2 * SAMPLE_EVERY)
            if burst is not anchor and value is not None and meaningful:
                text += f" ({common.ratio(float(value), float(base))})"
            cells.append(text)
        rows.append((label, *cells))
    return rows
