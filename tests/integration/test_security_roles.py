"""Least privilege in the database (docs/security.md), on real PostgreSQL: an owner role that
migrates and grants, a runtime role for the API and workers with data rights only, and a
read-only role for the controller's depth probe. Each is a LOGIN role without superuser; the
system runs end to end with them, and each is refused what it must not do."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from controller.depth import DepthSource
from tests.fixtures import postgres as pg
from tests.integration.api_support import JOBS, api_process
from tests.integration.queue_support import eventually, fetchval
from worker.db import claims, maintenance, workers
from worker.db.jobs import NewJob, enqueue_many
from worker.db.pressure import select_database_pressure
from worker.db.scaling_decisions import (
    delete_scaling_decisions_older,
    insert_scaling_decisions,
)
from worker.db.startups import select_first_startup

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Roles:
    owner: str
    runtime: str
    readonly: str
    database: str
    server: Any

    def dsn(self, role: str) -> str:
        return self.server.dsn(self.database).replace("://postgres@", f"://{role}@", 1)


@pytest.fixture
async def roles(pg_server: pg.PostgresServer) -> AsyncIterator[Roles]:
    suffix = uuid.uuid4().hex[:8]
    found = Roles(f"jq_owner_{suffix}", f"jq_runtime_{suffix}", f"jq_readonly_{suffix}",
                  f"jq_roles_{suffix}", pg_server)  # fmt: skip
    admin = await asyncpg.connect(pg_server.dsn())
    try:
        for role in (found.owner, found.runtime, found.readonly):
            await admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
        await admin.execute(f'CREATE DATABASE "{found.database}" OWNER "{found.owner}"')
        # PostgreSQL 14 and older let every role create in public; the chart's database, made
        # by the image's initdb for this purpose, is treated the same way
        conn = await asyncpg.connect(pg_server.dsn(found.database))
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(f'ALTER SCHEMA public OWNER TO "{found.owner}"')
        await conn.close()
        yield found
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{found.database}" WITH (FORCE)')
        for role in (found.runtime, found.readonly, found.owner):
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


def migrate_as_owner(roles: Roles) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "worker", "migrate"],
        env={
            "PATH": "/usr/bin:/bin",
            "DB_URL": roles.dsn(roles.owner),
            "JOBQUEUE_DB_RUNTIME_ROLE": roles.runtime,
            "JOBQUEUE_DB_READONLY_ROLE": roles.readonly,
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def refused(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(sql)
    finally:
        await conn.close()


async def test_each_role_has_only_its_rights(roles: Roles, workers: Any, tmp_path: Path) -> None:
    out = migrate_as_owner(roles)
    assert f"granted rights to: {roles.runtime}, {roles.readonly}" in out
    runtime, readonly, owner = (roles.dsn(r) for r in (roles.runtime, roles.readonly, roles.owner))

    # the runtime role runs the system: the API enqueues, a worker completes, schedules and
    # the console's sessions work
    workers(runtime)
    with api_process(runtime, tmp_path / "api.log") as api:
        async with httpx.AsyncClient(base_url=api.url) as c:
            made = await c.post(JOBS, json={"job_type": "noop"})
            assert made.status_code == 201, made.text
            job_id = made.json()["id"]

            async def done() -> bool:
                return (await c.get(f"{JOBS}/{job_id}")).json()["status"] == "completed"

            await eventually(done, within=60, what="the job to complete as the runtime role")
            schedule = {"name": "s", "every_seconds": 60, "job": {"job_type": "noop"}}
            assert (await c.post("/api/v1/queue/schedules", json=schedule)).status_code == 201
            retried = await c.post("/api/v1/queue/jobs/retry", json={"all": True})
            assert retried.status_code == 200
            assert (await c.get("/api/v1/queue/queues")).status_code == 200

    # the worker recorded its start as the runtime role (the controller's cold-start timeline),
    # and KEDA, given the workers' DB_URL, can call the demand function
    assert await fetchval(runtime, "SELECT count(*) FROM workers WHERE startup IS NOT NULL") >= 1
    assert await fetchval(runtime, "SELECT jobqueue_demand(ARRAY['default'])") == 0

    # its workers turn the ready ring (docs/storage.md), through the owner's function
    await fetchval(runtime, "SELECT jobqueue_ready_turn(0, 10)")

    # ... and nothing else: no DDL, no server programs, no TRUNCATE
    for sql in (
        "CREATE TABLE evil (id int)",
        "COPY (SELECT 1) TO PROGRAM 'true'",
        "ALTER TABLE jobs ADD COLUMN evil int",
        "TRUNCATE jobs",
        "TRUNCATE job_ready_0",  # the ready ring's turn truncates as the owner, not this role
        "DROP TABLE jobs",
        "CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ):
        await refused(runtime, sql)

    # the read-only role: the controller's depth probe and its decisions log, no job writes
    probe = DepthSource(readonly, timeout=5)
    try:
        depth = await probe.depth(["default"], 100)
        assert depth.ready == 0
        await probe.read(
            lambda conn: insert_scaling_decisions(
                conn, "ns", "workers", 0, 1, "scale-up", {"ready": 1}, 5
            )
        )
        await probe.read(lambda conn: delete_scaling_decisions_older(conn, 3600, 5))
        # the pressure probe, the cold-start read and the demand KEDA may query as this role
        pressure = await probe.read(lambda conn: select_database_pressure(conn, 5))
        assert pressure["max_connections"] > 0
        first = await probe.read(lambda conn: select_first_startup(conn, "%", 0.0, 5))
        assert first is not None and "firstClaim" in first[1]
        assert await fetchval(readonly, "SELECT jobqueue_demand(ARRAY['default'])") == 0
        demand = "SELECT count(*) FROM jobqueue_queue_demand(ARRAY['default'])"
        assert await fetchval(readonly, demand) == 1
    finally:
        await probe.close()
    for sql in (
        "INSERT INTO jobs (job_type, payload) VALUES ('noop', '{}')",
        "UPDATE jobs SET priority = 1",
        "DELETE FROM jobs",
        "INSERT INTO queues (name) VALUES ('x')",
        "DELETE FROM job_ready",
        "SELECT jobqueue_ready_turn(0, 10)",  # it may execute every function, but not this one
        "COPY (SELECT 1) TO PROGRAM 'true'",
    ):
        await refused(readonly, sql)

    # no role is a superuser; the owner cannot run programs on the server either
    for role in (roles.owner, roles.runtime, roles.readonly):
        assert (
            await fetchval(owner, f"SELECT rolsuper FROM pg_roles WHERE rolname = '{role}'")
            is False
        )
    await refused(owner, "COPY (SELECT 1) TO PROGRAM 'true'")

    # what a later migration creates is granted by default privileges, with no new grant
    await fetchval(owner, "CREATE TABLE later_table (id int)")
    await fetchval(runtime, "INSERT INTO later_table VALUES (1)")
    assert await fetchval(readonly, "SELECT count(*) FROM later_table") == 1
    await refused(readonly, "INSERT INTO later_table VALUES (2)")


async def test_the_runtime_role_holds_and_sweeps_liveness_locks(roles: Roles) -> None:
    """Rescue at the speed of death (migration 0014) as the runtime role: its lock key from the
    sequence, the lock held, the claim's gate, and the sweep that takes a dead worker's jobs.
    A worker's own sweep logs a refusal and carries on, so it is asked here directly."""
    migrate_as_owner(roles)
    runtime = roles.dsn(roles.runtime)
    conn, holder = await asyncpg.connect(runtime), await asyncpg.connect(runtime)
    try:
        key = await workers.next_lock_key(conn)
        await workers.hold_liveness(holder, key)
        worker = uuid.uuid4()
        await workers.register_worker(conn, worker, "w", ["default"], 1, 0, 30.0, key)
        await enqueue_many(conn, [NewJob("noop")])
        assert len(await claims.claim_jobs(conn, ["default"], 1, worker, 30.0, key)) == 1
        nothing = maintenance.RescueResult(requeued=0, failed=0)
        assert await maintenance.rescue_dead_workers(conn, settle_seconds=0) == nothing

        holder.terminate()  # the worker dies

        async def rescued() -> maintenance.RescueResult | None:
            result = await maintenance.rescue_dead_workers(conn, settle_seconds=0)
            return None if result == nothing else result

        found = await eventually(rescued, within=30, what="the dead worker's job to come back")
        assert found == maintenance.RescueResult(requeued=1, failed=0)
    finally:
        holder.terminate()
        await conn.close()
