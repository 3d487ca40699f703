"""The database-pressure probe against real PostgreSQL: a real pinned horizon (a REPEATABLE
READ snapshot, or a transaction id, left idle) is found and named; a read-only role with
pg_read_all_stats sees another role's session, one without it sees only its own; and the
guard holds scale-up, says so once, and says when it ended."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from controller import annotations as ann
from controller.depth import DepthSource
from controller.metrics import ControllerMetrics
from controller.policy import Decision, PolicyState, Reason
from controller.pressure_guard import ENDED_EVENT, HELD_EVENT, PressureGuard
from controller.scaler import DeploymentRef
from worker.db import pressure as pressure_sql
from worker.db.connection import connect

REF = DeploymentRef("ns", "workers", "uid-1")


@contextlib.asynccontextmanager
async def pinned(dsn: str, application: str, *, with_xid: bool = False) -> AsyncIterator[int]:
    """A session that holds the horizon back, idle in its transaction; yields its pid."""
    conn = await asyncpg.connect(dsn, server_settings={"application_name": application})
    try:
        await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        await conn.fetchval("SELECT txid_current()" if with_xid else "SELECT count(*) FROM jobs")
        yield conn.get_server_pid()
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def role(dsn: str, *grants: str) -> AsyncIterator[str]:
    """A login role with only CONNECT (and `grants`), and a DSN that logs in as it."""
    name = f"watcher_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw'")
        for grant in grants:
            await admin.execute(f"GRANT {grant} TO {name}")
        parts = urlsplit(dsn)
        yield urlunsplit(parts._replace(netloc=f"{name}:pw@{parts.hostname}:{parts.port}"))
    finally:
        await admin.execute(f"DROP OWNED BY {name}")
        await admin.execute(f"DROP ROLE {name}")
        await admin.close()


async def read(dsn: str) -> asyncpg.Record:
    conn = await connect(dsn)
    try:
        return await pressure_sql.select_database_pressure(conn, 5)
    finally:
        await conn.close()


async def test_nothing_pinned_and_the_headroom_counts_clients(pg_dsn: str) -> None:
    row = await read(pg_dsn)
    assert row["pid"] is None or row["application_name"] != "nightly-report"
    free = row["max_connections"] - row["reserved_connections"] - row["client_connections"]
    assert row["client_connections"] >= 1 and free > 0
    assert row["sees_all"]  # the tests' superuser


async def test_a_pinned_snapshot_is_found_and_named(pg_dsn: str) -> None:
    async with pinned(pg_dsn, "nightly-report") as pid:
        await asyncio.sleep(0.3)
        row = await read(pg_dsn)
    assert (row["pid"], row["application_name"]) == (pid, "nightly-report")
    assert row["state"] == "idle in transaction" and row["age_seconds"] >= 0.25


async def test_a_transaction_id_held_open_is_found(pg_dsn: str) -> None:
    async with pinned(pg_dsn, "writer", with_xid=True) as pid:
        row = await read(pg_dsn)
    assert row["pid"] == pid and row["application_name"] == "writer"


async def test_a_read_only_role_with_pg_read_all_stats_sees_every_session(pg_dsn: str) -> None:
    async with role(pg_dsn, "pg_read_all_stats") as watcher, pinned(pg_dsn, "analyst") as pid:
        row = await read(watcher)
        assert row["sees_all"] and row["pid"] == pid
        # and it may not write: the probe needs no more than that
        conn = await asyncpg.connect(watcher)
        try:
            await conn.execute("SELECT 1")
            try:
                await conn.execute("DELETE FROM jobs")
            except asyncpg.InsufficientPrivilegeError:
                pass
            else:
                raise AssertionError("the watcher role could write")
        finally:
            await conn.close()


async def test_without_pg_read_all_stats_other_roles_horizons_are_unseen(pg_dsn: str) -> None:
    async with role(pg_dsn) as watcher, pinned(pg_dsn, "analyst"):
        row = await read(watcher)
    assert not row["sees_all"] and row["application_name"] != "analyst"


def _config(seconds: float) -> Any:
    return ann.parse({ann.QUEUES: "q", ann.DB_PRESSURE_SECONDS: str(seconds)})


async def test_the_guard_holds_scale_up_says_so_once_and_says_when_it_ended(pg_dsn: str) -> None:
    depth = DepthSource(pg_dsn)
    guard = PressureGuard(depth, timeout=5, metrics=ControllerMetrics())
    events: list[tuple[str, str, bool]] = []

    async def post(ref: Any, reason: str, message: str, warning: bool) -> None:
        events.append((reason, message, warning))

    up = Decision(6, Reason.SCALE_UP, PolicyState(), 6)
    try:
        async with pinned(pg_dsn, "nightly-report") as pid:
            await asyncio.sleep(0.3)
            for _ in range(2):
                await guard.read()
                held = await guard.hold(REF, _config(0.2), up, 2, post)
                assert (held.replicas, held.reason) == (2, Reason.DATABASE_PRESSURE)
            shown = guard.status(("ns", "workers"))
            assert shown is not None and shown["pid"] == pid
            assert shown["application"] == "nightly-report"
            # another Deployment, with a longer threshold, is not held yet
            patient = DeploymentRef("ns", "patient", "uid-2")
            assert (await guard.hold(patient, _config(600), up, 2, post)).replicas == 6
            assert len(events) == 1
        await guard.read()
        assert (await guard.hold(REF, _config(0.2), up, 2, post)).replicas == 6
    finally:
        await depth.close()
    assert [(reason, warning) for reason, _, warning in events] == [
        (HELD_EVENT, True),
        (ENDED_EVENT, False),
    ]
    assert f"pid {pid}" in events[0][1] and "'nightly-report'" in events[0][1]
