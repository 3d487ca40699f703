"""L3: what makes the controller safe to run: no finalizers, one leader among replicas,
idle pods removed first, health and metrics, and the cluster-wide mode."""

from __future__ import annotations

import json
import time
import uuid

import asyncpg
import pytest

from controller import annotations as ann
from tests.fixtures.kube import ControlPlane
from tests.k8s import harness as h
from worker.db.claims import register_worker

pytestmark = pytest.mark.k8s


def _holder(plane: ControlPlane, namespace: str) -> str | None:
    found = plane.kubectl(
        "get", "lease", "jobqueue-controller", "-n", namespace, "-o", "json", check=False
    )
    if found.returncode != 0:
        return None
    return json.loads(found.stdout)["spec"].get("holderIdentity")


async def test_no_finalizer_and_deployments_delete_cleanly(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    for name in ("live-delete", "after-delete"):
        plane.apply(h.deployment(name, annotations={ann.QUEUES: name}), namespace)
    controller = h.start_controller(
        kubeconfig=kubeconfig, namespace=namespace, dsn=pg_dsn, log_dir=tmp_path
    )
    controllers.append(controller)
    ctl = [controller]
    await h.enqueue(pg_dsn, "live-delete", 15)
    await h.enqueue(pg_dsn, "after-delete", 15)
    for name in ("live-delete", "after-delete"):
        await h.eventually(
            lambda n=name: h.status(plane, namespace, n).get("actual") == 2,
            what=f"{name} scaled",
            controllers=ctl,
        )
        metadata = h.get(plane, namespace, "deployment", name)["metadata"]
        assert not metadata.get("finalizers")
        assert not [key for key in metadata.get("annotations", {}) if key.startswith("kopf.")]
    assert 'deployment="live-delete"' in controller.metrics()

    # deleted while the controller runs: it lets go, and forgets its series
    plane.kubectl(
        "delete", "deployment", "live-delete", "-n", namespace, "--wait=true", "--timeout=30s"
    )
    await h.eventually(
        lambda: 'deployment="live-delete"' not in controller.metrics(),
        what="series dropped",
        controllers=ctl,
    )
    # deleted after the controller is gone: nothing is left to wait for
    controller.stop()
    plane.kubectl(
        "delete", "deployment", "after-delete", "-n", namespace, "--wait=true", "--timeout=30s"
    )
    gone = plane.kubectl("get", "deployment", "-n", namespace, "-o", "name").stdout.split()
    assert gone == []


@pytest.mark.timeout(300)
async def test_two_replicas_one_leader_and_handover_on_kill(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane.apply(h.deployment("shared", annotations={ann.JOBS_PER_REPLICA: "10"}), namespace)
    for identity in ("ctl-a", "ctl-b"):
        controllers.append(
            h.start_controller(
                kubeconfig=kubeconfig,
                namespace=namespace,
                dsn=pg_dsn,
                log_dir=tmp_path,
                identity=identity,
            )
        )
    by_name = {c.identity: c for c in controllers}
    leader_name = await h.eventually(
        lambda: _holder(plane, namespace), what="a lease holder", controllers=controllers
    )
    leader = by_name[leader_name]
    (follower,) = [c for c in controllers if c is not leader]
    await h.eventually(
        lambda: follower.health()[0] == 200, what="the follower serving", controllers=controllers
    )

    await h.enqueue(pg_dsn, "default", 20)
    await h.Watch(plane, namespace, controllers).replicas("shared", 2, "scale to 2")
    ups = h.events(plane, namespace, "shared", "ScaledUp")  # 0 -> 1 (cold-start), 1 -> 2
    assert ups and all(up["reportingInstance"] == leader.identity for up in ups)
    assert follower.health()[1]["leader"] is False and leader.health()[1]["leader"] is True
    assert "jobqueue_controller_scale_events_total{" in leader.metrics()
    assert "jobqueue_controller_scale_events_total{" not in follower.metrics()
    assert "jobqueue_controller_leader 0.0" in follower.metrics()

    killed_at = time.monotonic()
    leader.kill()
    await h.eventually(
        lambda: _holder(plane, namespace) == follower.identity,
        what="the follower taking over",
        within=30,
        controllers=[follower],
    )
    print(f"handover after SIGKILL: {time.monotonic() - killed_at:.1f}s (lease 3s)")
    await h.enqueue(pg_dsn, "default", 30)
    await h.Watch(plane, namespace, [follower]).replicas("shared", 5, "new leader scales")
    latest = h.events(plane, namespace, "shared", "ScaledUp")[-1]
    assert latest["reportingInstance"] == follower.identity and "from 2 to 5" in latest["message"]

    # a clean stop hands the Lease over at once instead of letting it expire
    third = h.start_controller(
        kubeconfig=kubeconfig, namespace=namespace, dsn=pg_dsn, log_dir=tmp_path, identity="ctl-c"
    )
    controllers.append(third)
    await h.eventually(lambda: third.health()[0] == 200, what="ctl-c serving", controllers=[third])
    follower.stop()
    await h.eventually(
        lambda: _holder(plane, namespace) == "ctl-c", what="ctl-c taking over", controllers=[third]
    )


async def test_pod_deletion_cost_follows_in_flight_jobs(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    in_flight = {"costly-busy": 5, "costly-idle": 0, "costly-some": 2}
    plane.apply(
        h.deployment("costly", replicas=4, annotations={ann.SCALE_DOWN_DELAY: "1"}), namespace
    )
    for name in [*in_flight, "costly-unregistered"]:
        plane.apply(h.pod(name, "costly"), namespace)
    plane.apply(h.pod("someone-else", "other"), namespace)
    workers = {uuid.uuid4(): name for name in in_flight}
    conn = await asyncpg.connect(pg_dsn)
    try:
        for worker_id, name in workers.items():
            await register_worker(conn, worker_id, name, ["default"], 8, in_flight[name], 600)
    finally:
        await conn.close()
    jobs = await h.enqueue(pg_dsn, "default", 40)  # holds 4 replicas while the pods are set up
    ctl = [
        h.start_controller(kubeconfig=kubeconfig, namespace=namespace, dsn=pg_dsn, log_dir=tmp_path)
    ]
    watch = h.Watch(plane, namespace, ctl)
    controllers.extend(ctl)
    await h.eventually(
        lambda: h.status(plane, namespace, "costly").get("depth") == 40,
        what="depth 40",
        controllers=ctl,
    )
    await h.cancel(pg_dsn, jobs)
    # two pods still run jobs: the scale-down stops at them, so neither is deleted
    await watch.replicas("costly", 2, "scale-down to the busy pods")
    shown = await watch.status("costly", "the busy pods named", reason="busy-replicas")
    assert shown["desired"] == 2

    def cost(name: str) -> str | None:
        return (
            h.get(plane, namespace, "pod", name)["metadata"]
            .get("annotations", {})
            .get(ann.POD_DELETION_COST)
        )

    assert {name: cost(name) for name in in_flight} == {
        name: str(n) for name, n in in_flight.items()
    }
    assert cost("costly-unregistered") == "0"  # not registered yet: holds no job
    assert cost("someone-else") is None  # not the Deployment's pod

    # their jobs finish (the heartbeat reports 0 in flight): the scale-down completes
    conn = await asyncpg.connect(pg_dsn)
    try:
        for worker_id, name in workers.items():
            await register_worker(conn, worker_id, name, ["default"], 8, 0, 600)
    finally:
        await conn.close()
    await watch.replicas("costly", 0, "scale-down once the pods are idle")


async def test_cluster_wide_mode_finds_deployments_in_any_namespace(
    plane, namespace, pg_dsn, controllers, tmp_path
) -> None:
    queue = f"cw-{uuid.uuid4().hex[:8]}"
    plane.apply(h.deployment("anywhere", annotations={ann.QUEUES: queue}), namespace)
    controller = h.start_controller(
        kubeconfig=plane.kubeconfig,
        namespace="",
        dsn=pg_dsn,
        log_dir=tmp_path,
        JOBQUEUE_CONTROLLER_CLUSTER_WIDE="true",
        JOBQUEUE_CONTROLLER_LEASE_NAMESPACE=namespace,
    )
    controllers.append(controller)
    await h.enqueue(pg_dsn, queue, 11)
    await h.Watch(plane, namespace, [controller]).replicas("anywhere", 2, "scale")


async def test_removing_the_label_releases_the_deployment(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane.apply(h.deployment("released", annotations={ann.QUEUES: "released"}), namespace)
    controller = h.start_controller(
        kubeconfig=kubeconfig, namespace=namespace, dsn=pg_dsn, log_dir=tmp_path
    )
    controllers.append(controller)
    ctl = [controller]
    await h.eventually(
        lambda: 'deployment="released"' in controller.metrics(), what="managed", controllers=ctl
    )
    plane.kubectl("label", "-n", namespace, "deployment", "released", f"{ann.AUTOSCALE_LABEL}-")
    await h.eventually(
        lambda: 'deployment="released"' not in controller.metrics(),
        what="released",
        controllers=ctl,
    )
    await h.enqueue(pg_dsn, "released", 30)
    await h.eventually(
        lambda: "jobqueue_controller_deployments 0.0" in controller.metrics(),
        what="none managed",
        controllers=ctl,
    )
    assert h.replicas(plane, namespace, "released") == 0


async def test_status_is_written_only_when_it_changes(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane.apply(h.deployment("quiet"), namespace)
    controller = h.start_controller(
        kubeconfig=kubeconfig, namespace=namespace, dsn=pg_dsn, log_dir=tmp_path
    )
    controllers.append(controller)
    await h.eventually(
        lambda: h.status(plane, namespace, "quiet").get("reason") == "steady",
        what="a status",
        controllers=[controller],
    )
    before = _deployment_patches(plane)
    started = time.monotonic()
    # many 0.3 s ticks and 0.5 s status intervals: any rewrite or self-triggered loop would show
    await h.eventually(
        lambda: time.monotonic() - started > 3, what="ticks to pass", controllers=[controller]
    )
    assert _deployment_patches(plane) == before


def _deployment_patches(plane: ControlPlane) -> int:
    """PATCH requests on Deployments the apiserver has served, by its own metrics (a no-op
    patch leaves the object's resourceVersion alone, so only the request count shows it)."""
    total = 0
    for line in plane.kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if line.startswith("apiserver_request_total{") and all(
            part in line for part in ('resource="deployments"', 'subresource=""', 'verb="PATCH"')
        ):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total
