"""L3: a scale-up from zero, as the real controller runs it against a real kube-apiserver and
real PostgreSQL, with the test playing the first worker (its registration, its startup record
and its first claim, through the worker's own statements): one replica first, the rest once
that worker has claimed, and the cold start's phases on the controller's /metrics and log."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest

from controller import annotations as ann
from controller.metrics import COLD_START_PHASES
from tests.k8s import harness as h
from worker.db import startups
from worker.db.claims import claim_jobs, register_worker
from worker.db.connection import connect

pytestmark = pytest.mark.k8s


def cold_start(metrics: str, deployment: str) -> dict[str, float]:
    pattern = (
        r'^jobqueue_controller_last_cold_start_seconds\{deployment="' + deployment
        + r'",namespace="[^"]+",phase="(\w+)"\} (\S+)$'
    )  # fmt: skip
    return {phase: float(value) for phase, value in re.findall(pattern, metrics, re.M)}


async def test_one_replica_first_then_the_rest_and_the_cold_start_timed(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    config = {ann.QUEUES: "cold", ann.JOBS_PER_REPLICA: "10", ann.MAX_REPLICAS: "5"}
    plane.apply(h.deployment("cold", annotations=config), namespace)
    controller = h.start_tracked(controllers, kubeconfig, namespace, pg_dsn, tmp_path)
    watch = h.Watch(plane, namespace, [controller])
    await watch.status("cold", "the controller's first look", reason="steady")

    await h.enqueue(pg_dsn, "cold", 40)  # asks for 4
    # the first worker: it starts, registers, claims, and records its start (which NOTIFYs);
    # at once, so that the 3 s head start cannot be what lets the rest go
    # (each phase the moment it really happened: made-up offsets could overtake a fast
    # connect and register, and the phases would then be out of order before the controller)
    process_started = time.time()
    imported = time.time()  # this "worker" has nothing to import
    conn = await connect(pg_dsn)
    try:
        connected = time.time()
        worker_id = uuid.uuid4()
        await register_worker(conn, worker_id, "cold-7c9f-x2k", ["cold"], 5, 0, 60)
        registered = time.time()
        claimed = await claim_jobs(conn, ["cold"], 5, worker_id, 60)
        assert len(claimed) == 5
        phases = {
            "processStarted": process_started,
            "imported": imported,
            "connected": connected,
            "registered": registered,
            "firstClaim": time.time(),
        }
        await startups.update_worker_startup(conn, worker_id, phases)
    finally:
        await conn.close()
    await watch.replicas("cold", 4, "the rest, once the first worker claimed")
    # (Events of one second come back in no particular order)
    ups = sorted(e["message"] for e in h.events(plane, namespace, "cold", "ScaledUp"))
    assert len(ups) == 2, ups
    assert ups[0].startswith("Scaled up from 0 to 1 replicas (cold-start"), ups
    # decided with the first worker's jobs running: its claim, not the clock, let the rest go
    assert ups[1].startswith("Scaled up from 1 to 4 replicas: 35 ready and 5 running"), ups

    found = await h.eventually(
        lambda: cold_start(controller.metrics(), "cold"), what="the cold start's phases",
        controllers=[controller],
    )  # fmt: skip
    # (the test's worker started before the scale-up; podCreated is timed only where a pod
    # was made: the plane has a kube-controller-manager once an L4 suite has run in this
    # session, and none when the k8s suite runs alone)
    pods = plane.get_json("pods", "-n", namespace)["items"]
    assert set(found) == set(COLD_START_PHASES) - (set() if pods else {"podCreated"}), found
    assert 0 <= found["decision"] <= found["scaled"], found
    reported = [found[p] for p in ("containerStarted", "imported", "connected", "registered")]
    assert reported == sorted(reported) and reported[-1] <= found["firstClaim"], found
    assert "cold start from the burst: decision" in controller.tail()


async def test_a_workers_startup_record_wakes_whoever_listens(pg_dsn: str) -> None:
    """The NOTIFY the controller's first-replica step waits for, through the real statement."""
    from controller.depth import DepthSource

    woken: asyncio.Queue[str] = asyncio.Queue()
    source = DepthSource(pg_dsn, on_worker_started=woken.put_nowait)
    conn = await connect(pg_dsn)
    try:
        await source.depth(["x"], 10)  # opens the connection, and its LISTENs
        worker_id = uuid.uuid4()
        await register_worker(conn, worker_id, "pool-abc-1", ["x"], 1, 0, 60)
        await startups.update_worker_startup(conn, worker_id, {"firstClaim": time.time()})
        assert await asyncio.wait_for(woken.get(), 10) == "pool-abc-1"
    finally:
        await conn.close()
        await source.close()
