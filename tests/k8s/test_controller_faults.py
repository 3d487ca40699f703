"""L3: the controller behind a fault proxy to PostgreSQL. With its replies dropped, or its
connection cut and new ones refused, it holds replicas (never scales down on unknown depth),
posts one Warning Event per outage, and recovers without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from controller import annotations as ann
from tests.fixtures.faultproxy import FaultProxy
from tests.k8s import harness as h

pytestmark = pytest.mark.k8s

OUTAGE_SECONDS = 600.0  # refused until the test lifts it; far longer than any wait below


async def _outage(plane, namespace, ctl, proxy: FaultProxy, start: Callable[[], None]) -> None:
    before = len(h.events(plane, namespace, "steady", "DepthUnknown"))
    proxy.refuse(OUTAGE_SECONDS)  # no reconnect succeeds until the outage ends
    start()
    await h.eventually(
        lambda: len(h.events(plane, namespace, "steady", "DepthUnknown")) > before,
        what="a DepthUnknown warning",
        controllers=ctl,
    )
    seen = time.monotonic()
    # well past the 1 s scale-down delay and several reconcile rounds
    await h.eventually(lambda: time.monotonic() - seen > 4, what="time to pass", controllers=ctl)
    warnings = h.events(plane, namespace, "steady", "DepthUnknown")
    assert len(warnings) == before + 1, warnings  # one Event per outage, not one per round
    assert warnings[-1]["type"] == "Warning" and "holding 3 replicas" in warnings[-1]["message"]
    assert h.replicas(plane, namespace, "steady") == 3
    assert not h.events(plane, namespace, "steady", "ScaledDown")
    proxy.refuse(0)  # the outage ends; the controller must reconnect by itself


@pytest.mark.timeout(300)
async def test_dropped_replies_and_cut_connections_hold_replicas_and_recover(
    plane, namespace, private_pg_server, kubeconfig, controllers, tmp_path
) -> None:
    dsn = await private_pg_server.create_database("jobqueue")
    parts = urlsplit(dsn)
    proxy = await FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    try:
        plane.apply(h.deployment("steady", annotations={ann.SCALE_DOWN_DELAY: "1"}), namespace)
        controller = h.start_controller(
            kubeconfig=kubeconfig, namespace=namespace, dsn=proxy.dsn_for(dsn), log_dir=tmp_path
        )
        controllers.append(controller)
        ctl = [controller]
        watch = h.Watch(plane, namespace, ctl)
        jobs = await h.enqueue(dsn, "default", 25)
        await watch.replicas("steady", 3, "scale to 3")
        # 1: the server executes the depth query, its reply never arrives
        await _outage(plane, namespace, ctl, proxy, lambda: proxy.drop_replies(1))
        await h.eventually(
            lambda: h.status(plane, namespace, "steady").get("reason") != "depth-unknown",
            what="depth known again after dropped replies",
            controllers=ctl,
        )
        # 2: every connection cut at once
        await _outage(plane, namespace, ctl, proxy, proxy.cut_all)
        assert proxy.dropped_replies >= 1 and proxy.cuts >= 2 and proxy.refused >= 1
        await h.cancel(dsn, jobs)
        await watch.replicas("steady", 0, "scale-down after recovery")
        assert controller.proc.poll() is None  # recovered without a restart
    finally:
        await proxy.close()
