"""The controller's capacity reads against real PostgreSQL: queue limits, the connection budget
(and a role that may not read it), finished jobs' run times into the window, and the
scaling_decisions record with its pruning."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from controller.capacity_guard import CapacityGuard
from controller.decisions import DecisionLog
from controller.depth import DepthSource
from controller.policy import Decision, PolicyState, Reason
from controller.scaler import DeploymentRef
from tests.fixtures.pg_roles import restricted_dsn
from worker.db import capacity as capacity_sql
from worker.db.connection import connect

REF = DeploymentRef("ns", "workers", "uid-1")


class Posted:
    """The Events the guard asks to post, kept for the test to read."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, bool]] = []

    async def __call__(self, ref: Any, reason: str, message: str, warning: bool) -> None:
        self.events.append((reason, message, warning))


def _config(**annotations: str) -> Any:
    from controller import annotations as ann

    return ann.parse({ann.QUEUES: "q", **annotations})


def _up(replicas: int) -> Decision:
    return Decision(replicas, Reason.SCALE_UP, PolicyState(), replicas)


async def test_limits_and_budget_bind_and_post_once(pg_dsn: str) -> None:
    depth = DepthSource(pg_dsn)
    guard = CapacityGuard(depth, timeout=5, window_seconds=60)
    posted = Posted()
    conn = await connect(pg_dsn)
    try:
        decision, cap = await guard.bind(REF, _config(), _up(10), posted)
        assert cap is None and decision.replicas == 10  # no limits; budget far above 10
        await conn.execute("INSERT INTO queues (name, concurrency_limit) VALUES ('q', 7)")
        for _ in range(2):
            decision, cap = await guard.bind(REF, _config(), _up(10), posted)
            assert decision.replicas == 3 and decision.reason is Reason.LIMIT_CAPPED
        assert [e[0] for e in posted.events] == ["LimitCapped"]  # once while it binds the same

        big = _config(**{"jobqueue.dev/db-connections-per-replica": "1000"})
        decision, cap = await guard.bind(REF, big, _up(10), posted)
        assert decision.replicas == 0 and decision.reason is Reason.DB_CONNECTION_BUDGET
        assert cap is not None and cap.detail["notOurs"] >= 1  # this test's own connection
        assert posted.events[-1][0] == "DBConnectionBudget"
    finally:
        await conn.close()
        await depth.close()


async def test_a_deployments_own_workers_are_not_counted_against_it(pg_dsn: str) -> None:
    others = await connect(pg_dsn, server_settings={"application_name": "psql"})
    ours = await connect(
        pg_dsn, server_settings={"application_name": "jobqueue-worker workers-5d8f-abcde"}
    )
    try:
        row = await capacity_sql.select_connections_budget(others, "workers", 5)
        row_other = await capacity_sql.select_connections_budget(others, "other", 5)
        assert row_other["not_ours"] == row["not_ours"] + 1
        assert (row["max_connections"] > 0 and row["reserved"] == 0) or row["reserved"] >= 0
    finally:
        await ours.close()
        await others.close()


async def test_a_role_that_may_not_read_the_budget_gets_one_warning(pg_dsn: str) -> None:
    dsn, drop = await restricted_dsn(pg_dsn)
    depth = DepthSource(dsn)
    guard = CapacityGuard(depth, timeout=5, window_seconds=60)
    posted = Posted()
    try:
        for _ in range(3):
            decision, cap = await guard.bind(REF, _config(), _up(4), posted)
            assert decision.replicas == 4 and cap is None
        (event,) = posted.events
        assert event[0] == "ConnectionBudgetUnknown" and event[2] is True
        assert "permission denied" in event[1]
        assert (await depth.depth(["q"], 10)).ready == 0  # the connection is still good
    finally:
        await depth.close()
        await drop()


async def test_finished_jobs_feed_the_window(pg_dsn: str) -> None:
    depth = DepthSource(pg_dsn)
    clock = [0.0]
    guard = CapacityGuard(depth, timeout=5, window_seconds=60, clock=lambda: clock[0])
    conn = await asyncpg.connect(pg_dsn)
    try:
        config = _config()
        await guard.measure(("ns", "workers"), config)
        assert guard.rate_per_replica(("ns", "workers"), config) is None
        await conn.execute(
            "INSERT INTO jobs (queue_name, job_type, status, started_at, finished_at) "
            "SELECT 'q', 'noop', 'completed', now() - interval '2 seconds', now() "
            "FROM generate_series(1, 10)"
        )
        clock[0] = 1.0
        await guard.measure(("ns", "workers"), config)
        rate = guard.rate_per_replica(("ns", "workers"), config)
        assert rate is not None and abs(rate - 3 / 2.0) < 0.01  # 3 slots / 2 s
        clock[0] = 2.0
        await guard.measure(("ns", "workers"), config)  # nothing new finished: same rate
        assert guard.rate_per_replica(("ns", "workers"), config) == rate
        clock[0] = 100.0
        await guard.measure(("ns", "workers"), config)  # out of the window
        assert guard.rate_per_replica(("ns", "workers"), config) is None
    finally:
        await conn.close()
        await depth.close()


async def test_decisions_are_recorded_on_change_and_pruned(pg_dsn: str) -> None:
    depth = DepthSource(pg_dsn)
    log = DecisionLog(depth, keep_seconds=3600, timeout=5)
    conn = await asyncpg.connect(pg_dsn)
    key = ("ns", f"d-{uuid.uuid4().hex[:6]}")
    try:
        await conn.execute(
            "INSERT INTO scaling_decisions (decided_at, namespace, deployment, from_replicas, "
            "to_replicas, reason) VALUES (now() - interval '2 hours', 'ns', 'old', 0, 1, 'x')"
        )
        await log.record(key, 0, 3, "scale-up", {"ready": 30})
        await log.record(key, 3, 3, "steady", {})
        await log.record(key, 3, 3, "limit-capped", {"capacity": {"cap": 3}})
        await log.record(key, 3, 3, "limit-capped", {})
        rows = await conn.fetch(
            "SELECT from_replicas, to_replicas, reason, detail FROM scaling_decisions "
            "WHERE deployment = $1 ORDER BY id",
            key[1],
        )
        assert [(r["from_replicas"], r["to_replicas"], r["reason"]) for r in rows] == [
            (0, 3, "scale-up"),
            (3, 3, "limit-capped"),
        ]
        assert (
            await conn.fetchval("SELECT count(*) FROM scaling_decisions WHERE deployment = 'old'")
            == 0
        )
    finally:
        await conn.close()
        await depth.close()
