"""L3: the controller scales real Deployments on a real kube-apiserver from real PostgreSQL.

Every controller here runs as `jobqueue controller` with a ServiceAccount token bound only to
controller/rbac.yaml's Role, so the RBAC manifest is exercised by every test.
"""

from __future__ import annotations

import time

import pytest

from controller import annotations as ann
from tests.k8s import harness as h

pytestmark = pytest.mark.k8s


_start = h.start_tracked  # started now, stopped after the test


async def test_burst_scales_up_then_down_to_min_and_to_zero_after_the_delay(
    control_plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane = control_plane
    config = {ann.MAX_REPLICAS: "5", ann.JOBS_PER_REPLICA: "10", ann.SCALE_DOWN_DELAY: "4"}
    plane.apply(h.deployment("to-zero", annotations={**config, ann.QUEUES: "zero"}), namespace)
    plane.apply(
        h.deployment(
            "to-min", replicas=2, annotations={**config, ann.QUEUES: "min", ann.MIN_REPLICAS: "2"}
        ),
        namespace,
    )
    # same queue, no label: the controller must never touch it
    plane.apply(
        h.deployment("unlabelled", replicas=1, labelled=False, annotations={ann.QUEUES: "zero"}),
        namespace,
    )
    controller = _start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)
    ctl = [controller]
    await h.eventually(
        lambda: h.status(plane, namespace, "to-zero").get("reason") == "steady",
        what="the controller to report on to-zero",
        controllers=ctl,
    )

    zero_jobs = await h.enqueue(pg_dsn, "zero", 35)
    min_jobs = await h.enqueue(pg_dsn, "min", 45)
    await h.reach_replicas(plane, namespace, "to-zero", 4, what="to-zero at 4", controllers=ctl)
    await h.reach_replicas(plane, namespace, "to-min", 5, what="to-min at 5", controllers=ctl)
    (up,) = h.events(plane, namespace, "to-zero", "ScaledUp")
    assert "from 0 to 4" in up["message"] and "35 ready" in up["message"]
    assert up["type"] == "Normal"
    shown = await h.status_when(
        plane,
        namespace,
        "to-zero",
        actual=4,
        what="status annotation after the scale-up",
        controllers=ctl,
    )
    assert shown["desired"] == 4 and shown["depth"] == 35 and shown["lastScaleTime"]

    drained_at = time.monotonic()
    await h.cancel(pg_dsn, zero_jobs + min_jobs)
    # demand is gone, but the delay holds the replicas, and the status says why
    await h.eventually(
        lambda: h.status(plane, namespace, "to-zero").get("reason") == "scale-down-delayed",
        what="a delayed scale-down",
        controllers=ctl,
    )
    assert h.replicas(plane, namespace, "to-zero") == 4
    await h.reach_replicas(plane, namespace, "to-zero", 0, what="to-zero at 0", controllers=ctl)
    assert time.monotonic() - drained_at >= 4  # never sooner than the delay
    await h.reach_replicas(plane, namespace, "to-min", 2, what="to-min at 2", controllers=ctl)
    (down,) = h.events(plane, namespace, "to-zero", "ScaledDown")
    assert "from 4 to 0" in down["message"]
    assert h.replicas(plane, namespace, "unlabelled") == 1
    assert not h.events(plane, namespace, "unlabelled")


async def test_below_the_activation_threshold_stays_at_zero(
    control_plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane = control_plane
    plane.apply(
        h.deployment("idle", annotations={ann.ACTIVATION_JOBS: "5", ann.JOBS_PER_REPLICA: "2"}),
        namespace,
    )
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    await h.enqueue(pg_dsn, "default", 5)
    seen = await h.status_when(
        plane,
        namespace,
        "idle",
        depth=5,
        what="the controller to see 5 ready jobs",
        controllers=ctl,
    )
    assert seen["reason"] == "below-activation" and seen["desired"] == 0
    assert h.replicas(plane, namespace, "idle") == 0
    await h.enqueue(pg_dsn, "default", 1)  # 6 > 5: activate, sized from demand (6 / 2)
    await h.reach_replicas(plane, namespace, "idle", 3, what="activation", controllers=ctl)


async def test_paused_is_respected(
    control_plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane = control_plane
    plane.apply(h.deployment("held", replicas=1, annotations={ann.PAUSED: "true"}), namespace)
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    await h.enqueue(pg_dsn, "default", 50)
    seen = await h.status_when(
        plane, namespace, "held", depth=50, what="the paused Deployment's status", controllers=ctl
    )
    assert seen["reason"] == "paused"
    assert h.replicas(plane, namespace, "held") == 1
    assert not h.events(plane, namespace, "held", "ScaledUp")
    h.annotate(plane, namespace, "held", **{ann.PAUSED: "false"})
    await h.reach_replicas(
        plane, namespace, "held", 5, what="scale after unpausing", controllers=ctl
    )


async def test_invalid_annotation_gives_a_warning_naming_it(
    control_plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane = control_plane
    plane.apply(
        h.deployment("broken", replicas=1, annotations={ann.MAX_REPLICAS: "lots"}), namespace
    )
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    await h.enqueue(pg_dsn, "default", 30)
    (warning,) = await h.eventually(
        lambda: h.events(plane, namespace, "broken", "InvalidAnnotation"),
        what="a Warning event",
        controllers=ctl,
    )
    assert warning["type"] == "Warning"
    assert ann.MAX_REPLICAS in warning["message"] and "lots" in warning["message"]
    assert h.replicas(plane, namespace, "broken") == 1  # left alone
    h.annotate(plane, namespace, "broken", **{ann.MAX_REPLICAS: "4"})
    await h.reach_replicas(plane, namespace, "broken", 3, what="scale once fixed", controllers=ctl)


@pytest.mark.timeout(300)
async def test_database_down_holds_replicas_and_warns(
    control_plane, namespace, private_pg_server, kubeconfig, controllers, tmp_path
) -> None:
    plane = control_plane
    dsn = await private_pg_server.create_database("jobqueue")
    plane.apply(h.deployment("steady", annotations={ann.SCALE_DOWN_DELAY: "1"}), namespace)
    ctl = [_start(controllers, kubeconfig, namespace, dsn, tmp_path)]
    jobs = await h.enqueue(dsn, "default", 25)
    await h.reach_replicas(plane, namespace, "steady", 3, what="scale to 3", controllers=ctl)

    private_pg_server.stop()
    (warning,) = await h.eventually(
        lambda: h.events(plane, namespace, "steady", "DepthUnknown"),
        what="a DepthUnknown warning",
        controllers=ctl,
    )
    assert warning["type"] == "Warning" and "holding 3 replicas" in warning["message"]
    shown = await h.status_when(
        plane,
        namespace,
        "steady",
        reason="depth-unknown",
        what="status: depth unknown",
        controllers=ctl,
    )
    assert shown["depth"] is None and shown["actual"] == 3
    outage_seen = time.monotonic()
    # well past the 1 s scale-down delay, replicas are still held
    await h.eventually(
        lambda: time.monotonic() - outage_seen > 3, what="time to pass", controllers=ctl
    )
    assert h.replicas(plane, namespace, "steady") == 3
    assert not h.events(plane, namespace, "steady", "ScaledDown")

    private_pg_server.start()
    await h.cancel(dsn, jobs)
    await h.reach_replicas(
        plane, namespace, "steady", 0, what="scale-down after recovery", controllers=ctl
    )
