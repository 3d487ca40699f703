"""JOBQUEUE_READ_DB_URL against a real streaming replica (pg_basebackup -R of a throwaway
primary): lists, stats and the console read from the replica, while enqueue and single jobs
use the primary. Pausing the replica's replay shows which server answered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PrivateServer
from tests.fixtures.postgres import ReplicaServer
from tests.integration.api_support import JOBS, api_process
from tests.integration.console_support import CONSOLE, csrf_of
from tests.integration.queue_support import eventually, fetchval

TOKEN = "replica-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READS = [
    JOBS,
    f"{JOBS}/stats/overview",
    "/api/v1/queue/queues",
    "/api/v1/queue/workers",
    "/api/v1/queue/schedules",
]


@pytest.fixture
def replica(private_pg_server: PrivateServer) -> Iterator[ReplicaServer]:
    server = ReplicaServer(private_pg_server)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


async def test_reads_go_to_the_replica(
    private_pg_server: PrivateServer, replica: ReplicaServer, tmp_path: Path
) -> None:
    primary_dsn = await private_pg_server.create_database("jobqueue")
    replica_dsn = replica.dsn("jobqueue")

    async def replicated() -> bool:
        try:
            return await fetchval(replica_dsn, "SELECT to_regclass('jobs') IS NOT NULL") is True
        except asyncpg.InvalidCatalogNameError:
            return False

    await eventually(replicated, within=60, what="the schema on the replica")
    assert await fetchval(replica_dsn, "SELECT pg_is_in_recovery()") is True

    with api_process(
        primary_dsn,
        tmp_path / "api.log",
        JOBQUEUE_API_TOKEN=TOKEN,
        JOBQUEUE_READ_DB_URL=replica_dsn,
    ) as api:
        async with httpx.AsyncClient(base_url=api.url, headers=AUTH, timeout=30) as client:
            first = (await client.post(JOBS, json={"job_type": "noop"})).json()["id"]

            async def listed() -> bool:
                jobs = (await client.get(JOBS)).json()["jobs"]
                return [job["id"] for job in jobs] == [first]

            await eventually(listed, within=30, what="the job in the replica's list")
            for path in READS:
                assert (await client.get(path)).status_code == 200, path

            # the replica stops replaying: new jobs are on the primary only
            await fetchval(replica_dsn, "SELECT pg_wal_replay_pause()")
            second = (await client.post(JOBS, json={"job_type": "noop"})).json()["id"]
            await asyncio.sleep(1)
            assert [job["id"] for job in (await client.get(JOBS)).json()["jobs"]] == [first]
            # a single job is read where it was written: the primary
            assert (await client.get(f"{JOBS}/{second}")).json()["status"] == "pending"

            # the console reads from the replica too; its sessions live on the primary
            page = await client.get(f"{CONSOLE}/login")
            done = await client.post(
                f"{CONSOLE}/login",
                data={"csrf_token": csrf_of(page), "token": TOKEN, "next": CONSOLE},
            )
            assert done.status_code == 303
            jobs_page = await client.get(f"{CONSOLE}/jobs")
            assert jobs_page.status_code == 200
            assert f'data-job="{first}"' in jobs_page.text
            assert f'data-job="{second}"' not in jobs_page.text
            for path in ("", "/workers", "/schedules", "/scaling", f"/jobs/{first}"):
                assert (await client.get(f"{CONSOLE}{path}")).status_code == 200, path

            await fetchval(replica_dsn, "SELECT pg_wal_replay_resume()")

            async def caught_up() -> bool:
                jobs = (await client.get(JOBS)).json()["jobs"]
                return [job["id"] for job in jobs] == [second, first]

            await eventually(caught_up, within=30, what="the replica to catch up")
        readers = await fetchval(
            replica_dsn,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'jobqueue-api reads'",
        )
        assert readers >= 1
