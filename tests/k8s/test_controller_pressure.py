"""L3: a real pinned horizon (an idle REPEATABLE READ transaction in real PostgreSQL) holds the
controller's scale-up on a real kube-apiserver. The status annotation shows the pressure within
two controller ticks of the threshold, the hold and its Warning Event come within two ticks of
the demand, both name the session (pid, application, state, age), `kubectl jobqueue status`
shows it, and once the session ends scaling resumes by itself.

Ticks are counted (jobqueue_controller_ticks_total on the controller's /metrics), not timed.
"""

from __future__ import annotations

import re
import sys

import asyncpg
import pytest

from controller import annotations as ann
from controller.pressure_guard import ENDED_EVENT, HELD_EVENT
from tests.integration.api_support import api_client, api_settings
from tests.k8s import harness as h
from tests.k8s.test_kubectl_plugin import plugin, table

pytestmark = pytest.mark.k8s

THRESHOLD = 4
AGE = "SELECT extract(epoch FROM now() - xact_start) FROM pg_stat_activity WHERE pid = $1"


def ticks(controller: h.Controller) -> int:
    found = re.search(r"^jobqueue_controller_ticks_total (\S+)$", controller.metrics(), re.M)
    assert found, "the controller publishes no tick count"
    return int(float(found.group(1)))


async def test_a_pinned_horizon_holds_scale_up_names_the_session_and_then_lets_go(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    plane.apply(
        h.deployment(
            "pinned",
            replicas=1,
            annotations={
                ann.QUEUES: "pressure",
                ann.MIN_REPLICAS: "1",
                ann.JOBS_PER_REPLICA: "10",
                ann.DB_PRESSURE_SECONDS: str(THRESHOLD),
            },
        ),
        namespace,
    )
    # ticks a second apart: polling between them cannot blur the count
    controller = h.start_tracked(
        controllers, kubeconfig, namespace, pg_dsn, tmp_path, JOBQUEUE_CONTROLLER_INTERVAL="1"
    )
    ctl = [controller]
    watch = h.Watch(plane, namespace, ctl)
    await watch.status("pinned", "the controller's first look", reason="steady")

    holder = await asyncpg.connect(pg_dsn, server_settings={"application_name": "nightly-report"})
    probe = await asyncpg.connect(pg_dsn)
    try:
        await holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        await holder.fetchval("SELECT count(*) FROM jobs")  # the snapshot that pins the horizon
        pid = holder.get_server_pid()

        async def past_threshold() -> bool:
            return float(await probe.fetchval(AGE, pid)) >= THRESHOLD

        await h.eventually(past_threshold, what="the threshold", interval=0.02, controllers=ctl)
        at_threshold = ticks(controller)
        shown = await h.eventually(
            lambda: "databasePressure" in (found := h.status(plane, namespace, "pinned")) and found,
            what="the pressure in the status", interval=0.05, controllers=ctl,
        )  # fmt: skip
        assert ticks(controller) - at_threshold <= 2
        assert shown["databasePressure"]["pid"] == pid

        before_demand = ticks(controller)
        await h.enqueue(pg_dsn, "pressure", 35)  # asks for 4 replicas
        (held,) = await h.eventually(
            lambda: h.events(plane, namespace, "pinned", HELD_EVENT),
            what="the DatabasePressure event", interval=0.05, controllers=ctl,
        )  # fmt: skip
        assert ticks(controller) - before_demand <= 2
        assert held["type"] == "Warning"
        named = (f"pid {pid}", "'nightly-report'", "'idle in transaction'", "database-pressure")
        for part in named:
            assert part in held["message"], held["message"]
        status = await watch.status("pinned", "the hold", reason="database-pressure")
        pressure = status["databasePressure"]
        assert (pressure["pid"], pressure["application"]) == (pid, "nightly-report")
        assert pressure["state"] == "idle in transaction" and pressure["ageSeconds"] >= THRESHOLD
        assert status["desired"] == 1 and h.replicas(plane, namespace, "pinned") == 1

        out = plugin("status", "-n", namespace, "--kubeconfig", str(plane.kubeconfig))
        assert out.returncode == 0, out.stderr
        (row,) = table(out.stdout)
        assert row["REASON"].startswith("database-pressure: the xmin horizon is held by pid")
        print(f"kubectl jobqueue status: {row}", file=sys.stderr)
        # and the console's Scaling page, from the decision the controller recorded
        async with api_client(api_settings(pg_dsn)) as client:
            page = (await client.get("/console/scaling")).text
        assert "Scale-up held (database-pressure)" in page
        assert f"pid {pid}" in page and "nightly-report" in page
    finally:
        await holder.close()  # the session ends: its snapshot goes with it
        await probe.close()

    await watch.replicas("pinned", 4, "scaling to resume by itself")
    (ended,) = await h.eventually(
        lambda: h.events(plane, namespace, "pinned", ENDED_EVENT),
        what="the DatabasePressureEnded event", controllers=ctl,
    )  # fmt: skip
    assert ended["type"] == "Normal"
    assert "databasePressure" not in h.status(plane, namespace, "pinned")
