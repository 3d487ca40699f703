"""L4: the ScaledObject that docs/autoscaling.md gives KEDA users, applied as written on a
control plane with KEDA's own operator and metrics adapter (built by
`tools/build-tools.sh --keda`), scales a worker Deployment of real worker processes from zero
on `jobqueue_demand`, and the workers run every job.

Its own control plane: KEDA's adapter needs the apiserver's aggregation layer, and an
APIService left behind would trouble the session's plane. Deadlines only bound a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from tests.conftest import CONTROL_PLANE_BINARIES, WORKLOAD_BINARIES
from tests.e2e import e2e_support as e2e
from tests.fixtures import keda
from tests.fixtures.doc_examples import example
from tests.fixtures.kube import ControlPlane
from tests.fixtures.pod_runner import PodRunner
from tests.fixtures.tools import require_binaries
from worker.db.jobs import NewJob, enqueue_many

pytestmark = pytest.mark.kwok

DOC = "docs/autoscaling.md"
NAMESPACE = "keda-doc"
# long enough (200 x 0.5 s on 5 slots: 20 s on one replica) for the HPA's 15 s sync to act
JOBS = 200
COMPLETED = "SELECT count(*) FROM jobs WHERE status = 'completed'"


def worker_deployment(name: str, dsn: str) -> dict[str, Any]:
    """A worker Deployment that our controller leaves alone (no jobqueue.dev/autoscale)."""
    env = {
        "DB_URL": dsn,
        "WORKER_QUEUES": "default",
        "MAX_CONCURRENT_JOBS": "5",
        "JOBQUEUE_HANDLER_MODULES": "tests.e2e.e2e_handlers",
        "JOBQUEUE_LOG_FORMAT": "plain",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "worker",
                            "image": "example.invalid/worker:keda",
                            "command": ["jobqueue"],
                            "args": ["worker"],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture(scope="module")
def keda_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    names = (*CONTROL_PLANE_BINARIES, *WORKLOAD_BINARIES, *keda.BINARIES)
    plane = ControlPlane(require_binaries(*names), aggregation=True)
    log_dir = tmp_path_factory.mktemp("keda")
    try:
        plane.start()
        plane.start_workloads()
        plane.create_namespace(NAMESPACE)
        with keda.keda(plane, log_dir):
            yield plane
    finally:
        plane.stop()


async def test_the_docs_scaledobject_scales_workers_from_zero_on_jobqueue_demand(
    keda_plane: ControlPlane, pg_dsn: str, tmp_path: Path
) -> None:
    scaled_object = yaml.safe_load(example(DOC, "keda-scaledobject").code)
    target = scaled_object["spec"]["scaleTargetRef"]["name"]
    trigger = scaled_object["spec"]["triggers"][0]["metadata"]
    assert trigger["query"] == "SELECT jobqueue_demand(ARRAY['default'])"
    await e2e.create_runs_table(pg_dsn)
    keda_plane.apply(worker_deployment(target, pg_dsn), NAMESPACE)
    runner = PodRunner(keda_plane, NAMESPACE, f"app={target}", log_dir=tmp_path).start()
    try:
        keda_plane.apply(scaled_object, NAMESPACE)  # as written in the docs
        conn = await asyncpg.connect(pg_dsn)
        try:
            jobs = [NewJob(e2e.JOB_TYPE, {"seconds": 0.5}) for _ in range(JOBS)]
            await enqueue_many(conn, jobs)
            peak = 0
            deadline = asyncio.get_running_loop().time() + 300
            while await conn.fetchval(COMPLETED) < JOBS:
                assert asyncio.get_running_loop().time() < deadline, _context(keda_plane, target)
                peak = max(peak, _replicas(keda_plane, target))
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
    finally:
        keda_plane.kubectl("delete", "scaledobject", "--all", "-n", NAMESPACE, check=False)
        runner.stop()
    # KEDA activated one replica, then its HPA sized the rest from the demand (200 jobs at 10
    # per replica, within maxReplicaCount 10)
    assert 2 <= peak <= 10, peak
    print(f"KEDA scaled {target} from 0 to {peak} on jobqueue_demand; {JOBS} jobs completed")


def _replicas(plane: ControlPlane, name: str) -> int:
    found = plane.get_json("deployment", name, "-n", NAMESPACE)
    return int(found["spec"].get("replicas") or 0)


def _context(plane: ControlPlane, name: str) -> str:
    scaled = plane.kubectl("describe", "scaledobject", name, "-n", NAMESPACE, check=False)
    hpa = plane.kubectl("get", "hpa", "-n", NAMESPACE, "-o", "wide", check=False)
    return f"jobs did not complete\n{scaled.stdout[-2000:]}\n{hpa.stdout}"
