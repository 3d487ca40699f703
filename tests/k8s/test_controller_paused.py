"""L3: a paused queue's ready jobs are no demand: its Deployment scales down to its minimum,
and the status annotation and an Event say why (queue-paused); resumed, it scales up again."""

from __future__ import annotations

import pytest

from controller import annotations as ann
from tests.k8s import harness as h
from worker.db import queues

pytestmark = pytest.mark.k8s


async def _set_paused(dsn: str, name: str, paused: bool) -> None:
    await h.with_connection(dsn, lambda conn: queues.set_paused(conn, name, paused))


async def test_a_paused_queue_scales_its_deployment_to_the_minimum_and_says_why(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    config = {
        ann.QUEUES: "reports",
        ann.MAX_REPLICAS: "5",
        ann.MIN_REPLICAS: "1",
        ann.JOBS_PER_REPLICA: "10",
        ann.SCALE_DOWN_DELAY: "1",
    }
    plane.apply(h.deployment("reports", replicas=1, annotations=config), namespace)
    controller = h.start_controller(
        kubeconfig=kubeconfig, namespace=namespace, dsn=pg_dsn, log_dir=tmp_path
    )
    controllers.append(controller)
    ctl = [controller]
    watch = h.Watch(plane, namespace, ctl)
    await h.enqueue(pg_dsn, "reports", 30)
    await watch.replicas("reports", 3, "3 replicas")

    await _set_paused(pg_dsn, "reports", True)
    await watch.replicas("reports", 1, "the minimum while paused")
    shown = await watch.status(
        "reports", "reason queue-paused in the status", reason="queue-paused"
    )
    assert shown["pausedQueues"] == ["reports"] and shown["depth"] == 0
    (noted,) = await h.eventually(
        lambda: h.events(plane, namespace, "reports", "QueuePaused"),
        what="the QueuePaused event",
        controllers=ctl,
    )
    assert "queue-paused" in noted["message"] and "reports" in noted["message"]
    (down,) = h.events(plane, namespace, "reports", "ScaledDown")
    assert "(queue-paused)" in down["message"] and "from 3 to 1" in down["message"]

    await _set_paused(pg_dsn, "reports", False)
    await watch.replicas("reports", 3, "3 replicas once resumed")
    assert "pausedQueues" not in h.status(plane, namespace, "reports")
