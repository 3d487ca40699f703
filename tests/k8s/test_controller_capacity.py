"""L3: the controller respects capacity. A queue's concurrency limit and the database's
connection budget cap the replicas, the status annotation, an Event, `kubectl jobqueue status`
and the scaling_decisions table say which cap bound and with what numbers; a role that may not
read the connection settings scales without that cap after one Warning; a bad annotation keeps
the last good configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import asyncpg
import pytest

from controller import annotations as ann
from tests.fixtures.pg_roles import restricted_dsn
from tests.k8s import harness as h

pytestmark = pytest.mark.k8s


_start = h.start_tracked  # started now, stopped after the test


def _with_slots(deployment: dict[str, Any], slots: int) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "MAX_CONCURRENT_JOBS", "value": str(slots)}]
    return deployment


def _plugin_status(plane: Any, namespace: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.kubectl_plugin", "status", "-n", namespace,
         "--kubeconfig", str(plane.kubeconfig)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def _sql(dsn: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    return await h.with_connection(dsn, lambda conn: conn.fetch(statement, *args))


async def test_a_queue_concurrency_limit_caps_replicas_and_says_so_everywhere(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    await _sql(pg_dsn, "INSERT INTO queues (name, concurrency_limit) VALUES ('limited', 5)")
    config = {ann.QUEUES: "limited", ann.MAX_REPLICAS: "10", ann.JOBS_PER_REPLICA: "10"}
    plane.apply(_with_slots(h.deployment("capped", annotations=config), 2), namespace)
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    watch = h.Watch(plane, namespace, ctl)
    await h.enqueue(pg_dsn, "limited", 100)  # the policy alone asks for 10

    # ceil(5 slots / 2 per replica) = 3
    await watch.replicas("capped", 3, "the limit cap of 3 replicas")
    shown = await watch.status("capped", "the status to name the limit cap", reason="limit-capped")
    capacity = shown["capacity"]
    assert (capacity["cap"], capacity["slots"], capacity["slotsPerReplica"]) == (3, 5, 2)
    assert capacity["queues"]["limited"]["concurrencyLimit"] == 5
    (event,) = await h.eventually(
        lambda: h.events(plane, namespace, "capped", "LimitCapped"),
        what="a LimitCapped Event",
        controllers=ctl,
    )
    assert "Capped at 3 replicas (the policy asks for 10)" in event["message"]
    assert "5 usable job slots" in event["message"]

    shown_by_plugin = _plugin_status(plane, namespace)
    assert shown_by_plugin.returncode == 0, shown_by_plugin.stderr
    assert "limit-capped: 5 usable job slots" in shown_by_plugin.stdout

    rows = await _sql(
        pg_dsn,
        "SELECT from_replicas, to_replicas, reason, detail FROM scaling_decisions "
        "WHERE namespace = $1 AND deployment = 'capped' ORDER BY id",
        namespace,
    )
    # from zero, one replica first (cold-start), then the cap
    cold, first = rows[0], rows[1]
    assert (cold["from_replicas"], cold["to_replicas"], cold["reason"]) == (0, 1, "cold-start")
    assert (first["from_replicas"], first["to_replicas"], first["reason"]) == (1, 3, "limit-capped")
    detail = json.loads(first["detail"])
    assert detail["ready"] == 100 and detail["target"] == 10 and detail["capacity"]["cap"] == 3

    # the limit raised: the cap moves with it, and the new decision is recorded
    await _sql(pg_dsn, "UPDATE queues SET concurrency_limit = 8 WHERE name = 'limited'")
    await watch.replicas("capped", 4, "the cap to follow the raised limit")
    await _sql(pg_dsn, "UPDATE queues SET concurrency_limit = NULL WHERE name = 'limited'")
    await watch.replicas("capped", 10, "the policy's own target once the limit is gone")
    reasons = [
        r["reason"]
        for r in await _sql(
            pg_dsn, "SELECT reason FROM scaling_decisions WHERE deployment = 'capped' ORDER BY id"
        )
    ]
    assert reasons[:3] == ["cold-start", "limit-capped", "limit-capped"]
    assert reasons[-1] == "scale-up"


async def _free_connections(dsn: str) -> int:
    (row,) = await _sql(
        dsn,
        "SELECT current_setting('max_connections')::int - "
        "current_setting('superuser_reserved_connections')::int AS free",
    )
    return int(row["free"])


async def test_the_connection_budget_caps_replicas(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    # connections per replica such that 2 replicas fit with room for any other clients
    per_replica = int((await _free_connections(pg_dsn) - 10) / 2.5)
    config = {
        ann.QUEUES: "budget",
        ann.MAX_REPLICAS: "10",
        ann.DB_CONNECTIONS_PER_REPLICA: str(per_replica),
    }
    plane.apply(h.deployment("budgeted", annotations=config), namespace)
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    watch = h.Watch(plane, namespace, ctl)
    await h.enqueue(pg_dsn, "budget", 100)
    await watch.replicas("budgeted", 2, "the connection budget of 2 replicas")
    shown = await watch.status(
        "budgeted", "the status to name the connection budget", reason="db-connection-budget"
    )
    assert shown["capacity"]["perReplica"] == per_replica
    assert shown["capacity"]["reservedForOthers"] == 10
    (event,) = await h.eventually(
        lambda: h.events(plane, namespace, "budgeted", "DBConnectionBudget"),
        what="a DBConnectionBudget Event",
        controllers=ctl,
    )
    assert (
        "max_connections" in event["message"]
        and f"/ {per_replica} per replica" in (event["message"])
    )


async def test_unreadable_connection_settings_skip_the_cap_with_one_warning(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    restricted, drop = await restricted_dsn(pg_dsn)
    try:
        plane.apply(
            h.deployment("unbudgeted", annotations={ann.QUEUES: "nobudget", ann.MAX_REPLICAS: "4"}),
            namespace,
        )
        ctl = [_start(controllers, kubeconfig, namespace, restricted, tmp_path)]
        watch = h.Watch(plane, namespace, ctl)
        await h.enqueue(pg_dsn, "nobudget", 40)
        await watch.replicas("unbudgeted", 4, "scaling without the connection cap")
        (warning,) = await h.eventually(
            lambda: h.events(plane, namespace, "unbudgeted", "ConnectionBudgetUnknown"),
            what="one Warning about the connection settings",
            controllers=ctl,
        )
        assert warning["type"] == "Warning" and "permission denied" in warning["message"]
        await h.enqueue(pg_dsn, "nobudget", 5)  # more ticks, and still one Warning
        await h.eventually(
            lambda: (h.status(plane, namespace, "unbudgeted").get("depth") or 0) > 40,
            what="the status to show the new depth",
            controllers=ctl,
        )
        assert len(h.events(plane, namespace, "unbudgeted", "ConnectionBudgetUnknown")) == 1
    finally:
        for controller in controllers:
            controller.stop()
        await drop()


async def test_a_bad_annotation_keeps_the_last_good_configuration(
    plane, namespace, pg_dsn, kubeconfig, controllers, tmp_path
) -> None:
    config = {ann.QUEUES: "kept", ann.MAX_REPLICAS: "6", ann.JOBS_PER_REPLICA: "10"}
    plane.apply(h.deployment("kept", annotations=config), namespace)
    ctl = [_start(controllers, kubeconfig, namespace, pg_dsn, tmp_path)]
    watch = h.Watch(plane, namespace, ctl)
    await h.enqueue(pg_dsn, "kept", 20)
    await watch.replicas("kept", 2, "2 replicas")
    h.annotate(plane, namespace, "kept", **{ann.TARGET_WAIT_SECONDS: "soon"})
    (warning,) = await h.eventually(
        lambda: h.events(plane, namespace, "kept", "InvalidAnnotation"),
        what="an InvalidAnnotation Warning",
        controllers=ctl,
    )
    assert warning["type"] == "Warning" and ann.TARGET_WAIT_SECONDS in warning["message"]
    assert "keeping the last good configuration" in warning["message"]
    await h.enqueue(pg_dsn, "kept", 30)  # 50 jobs: the last good config asks for 5
    await watch.replicas("kept", 5, "scaling on with the last good configuration")
