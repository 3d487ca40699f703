"""L3: the controller scales real Deployments on a real kube-apiserver from real PostgreSQL.

Every controller here runs as `jobqueue controller` with a ServiceAccount token bound only to
controller/rbac.yaml's Role, so the RBAC manifest is exercised by every test.
"""

from __future__ import annotations

import sys
import time

import pytest

from controller import annotations as ann
from tests.k8s import harness as h

pytestmark = pytest.mark.k8s


_start = h.start_tracked  # started now, stopped after the test


async def test_burst_scales_up_then_down_to_min_and_to_zero_after_the_delay(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
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
    watch = h.Watch(plane, namespace, ctl)
    await h.eventually(
        lambda: h.status(plane, namespace, "to-zero").get("reason") == "steady",
        what="the controller to report on to-zero",
        controllers=ctl,
    )

    zero_jobs = await h.enqueue(pg_dsn, "zero", 35)
    min_jobs = await h.enqueue(pg_dsn, "min", 45)
    await watch.replicas("to-zero", 4, "to-zero at 4")
    await watch.replicas("to-min", 5, "to-min at 5")
    # from zero, one replica first (cold-start); the rest once its worker claims, or, with no
    # worker on this plane, once the head start is over
    first, up = h.events(plane, namespace, "to-zero", "ScaledUp")
    assert "from 0 to 1 replicas (cold-start" in first["message"]
    assert "from 1 to 4" in up["message"] and "35 ready" in up["message"]
    assert up["type"] == "Normal"
    shown = await watch.status("to-zero", "status annotation after the scale-up", actual=4)
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
    await watch.replicas("to-zero", 0, "to-zero at 0")
    assert time.monotonic() - drained_at >= 4  # never sooner than the delay
    await watch.replicas("to-min", 2, "to-min at 2")
    (down,) = h.events(plane, namespace, "to-zero", "ScaledDown")
    assert "from 4 to 0" in down["message"]
    assert h.replicas(plane, namespace, "unlabelled") == 1
    assert not h.events(plane, namespace, "unlabelled")


async def test_below_the_activation_threshold_stays_at_zero(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane.apply(
        h.deployment("idle", annotations={ann.ACTIVATION_JOBS: "5", ann.JOBS_PER_REPLICA: "2"}),
        namespace,
    )
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    watch = h.Watch(plane, namespace, ctl)
    await h.enqueue(pg_dsn, "default", 5)
    seen = await watch.status("idle", "the controller to see 5 ready jobs", depth=5)
    assert seen["reason"] == "below-activation" and seen["desired"] == 0
    assert h.replicas(plane, namespace, "idle") == 0
    await h.enqueue(pg_dsn, "default", 1)  # 6 > 5: activate, sized from demand (6 / 2)
    await watch.replicas("idle", 3, "activation")


async def test_paused_is_respected(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane.apply(h.deployment("held", replicas=1, annotations={ann.PAUSED: "true"}), namespace)
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    watch = h.Watch(plane, namespace, ctl)
    await h.enqueue(pg_dsn, "default", 50)
    seen = await watch.status("held", "the paused Deployment's status", depth=50)
    assert seen["reason"] == "paused"
    assert h.replicas(plane, namespace, "held") == 1
    assert not h.events(plane, namespace, "held", "ScaledUp")
    h.annotate(plane, namespace, "held", **{ann.PAUSED: "false"})
    await watch.replicas("held", 5, "scale after unpausing")


async def test_invalid_annotation_gives_a_warning_naming_it(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane.apply(
        h.deployment("broken", replicas=1, annotations={ann.MAX_REPLICAS: "lots"}), namespace
    )
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    watch = h.Watch(plane, namespace, ctl)
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
    await watch.replicas("broken", 3, "scale once fixed")


@pytest.mark.timeout(300)
async def test_database_down_holds_replicas_and_warns(
    plane, namespace, private_pg_server, kubeconfig, controllers, tmp_path
) -> None:
    dsn = await private_pg_server.create_database("jobqueue")
    plane.apply(h.deployment("steady", annotations={ann.SCALE_DOWN_DELAY: "1"}), namespace)
    ctl = [_start(controllers, kubeconfig, namespace, dsn, tmp_path)]
    watch = h.Watch(plane, namespace, ctl)
    jobs = await h.enqueue(dsn, "default", 25)
    await watch.replicas("steady", 3, "scale to 3")

    private_pg_server.stop()
    (warning,) = await h.eventually(
        lambda: h.events(plane, namespace, "steady", "DepthUnknown"),
        what="a DepthUnknown warning",
        controllers=ctl,
    )
    assert warning["type"] == "Warning" and "holding 3 replicas" in warning["message"]
    shown = await watch.status("steady", "status: depth unknown", reason="depth-unknown")
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
    await watch.replicas("steady", 0, "scale-down after recovery")


async def test_demand_that_falls_in_steps_goes_to_zero_one_delay_after_the_last(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    """The stabilisation window: the scale-down follows the highest target of the last delay,
    so demand that falls 40 -> 20 -> 0 within the delay reaches zero one delay after it hit
    zero, not a delay after each step (the floor the policy of a peak per streak reached only
    after two delays)."""
    delay = 6.0
    config = {ann.MAX_REPLICAS: "5", ann.JOBS_PER_REPLICA: "10", ann.SCALE_DOWN_DELAY: str(delay)}
    plane.apply(h.deployment("steps", annotations={**config, ann.QUEUES: "steps"}), namespace)
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    watch = h.Watch(plane, namespace, ctl)
    jobs = await h.enqueue(pg_dsn, "steps", 40)
    await watch.replicas("steps", 4, "steps at 4")
    await h.cancel(pg_dsn, jobs[:20])
    await watch.status("steps", "the first step down seen", depth=20)
    await h.cancel(pg_dsn, jobs[20:])
    zero_at = time.monotonic()
    await watch.status("steps", "no demand seen", depth=0)
    await watch.replicas("steps", 0, "steps at 0")
    took = time.monotonic() - zero_at
    downs = [e["message"] for e in h.events(plane, namespace, "steps", "ScaledDown")]
    print(f"scale-downs {downs}; zero {took:.1f} s after demand did", file=sys.stderr)
    assert took >= delay  # never sooner than the delay
    # one delay, with ticks to spare: a second delay would have made it 2 x 6 s
    assert took < 1.5 * delay, downs
    assert downs[-1].startswith("Scaled down from ") and " to 0 replicas" in downs[-1]


async def test_idle_replicas_stay_warm_above_demand(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    annotations = {
        ann.QUEUES: "warm",
        ann.IDLE_REPLICAS: "2",
        ann.JOBS_PER_REPLICA: "10",
        ann.SCALE_DOWN_DELAY: "1",
    }
    plane.apply(h.deployment("warm", annotations=annotations), namespace)
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    watch = h.Watch(plane, namespace, ctl)
    await watch.replicas("warm", 2, "the warm pool with no demand")
    jobs = await h.enqueue(pg_dsn, "warm", 25)
    await watch.replicas("warm", 5, "demand (3) plus the 2 idle replicas")
    await h.cancel(pg_dsn, jobs)
    await watch.replicas("warm", 2, "back to the warm pool, not to zero")
    assert h.status(plane, namespace, "warm")["desired"] == 2
