"""Deadlines and bounds on a real `jobqueue api`: a statement, a silent server and a full pool
each end in a 503 with Retry-After, as an outage does; slow reads cannot take the connections
enqueue needs; and a page of GET /jobs has a bound in bytes, not only in rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.integration.api_support import JOBS, api_process
from tests.integration.security_support import MiB, peak_rss, reset_peak

QUEUES = "/api/v1/queue/queues"


@asynccontextmanager
async def locked(dsn: str, table: str) -> AsyncIterator[None]:
    """Another session holds an ACCESS EXCLUSIVE lock on `table`: every read of it waits."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


def assert_outage(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    "limit",
    [
        {"JOBQUEUE_DB_STATEMENT_TIMEOUT": "1", "JOBQUEUE_DB_COMMAND_TIMEOUT": "30"},
        # a server that does not answer at all: the client's own deadline
        {"JOBQUEUE_DB_STATEMENT_TIMEOUT": "0", "JOBQUEUE_DB_COMMAND_TIMEOUT": "1"},
    ],
    ids=["statement", "command"],
)
async def test_a_statement_past_its_deadline_is_a_503(
    pg_dsn: str, tmp_path: Path, limit: dict[str, str]
) -> None:
    with api_process(pg_dsn, tmp_path / "api.log", **limit) as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
            made = await client.post(JOBS, json={"job_type": "noop"})
            async with locked(pg_dsn, "jobs"):
                answer = await client.get(f"{JOBS}/{made.json()['id']}")
            assert_outage(answer)
            # and the API is fine once the database is
            assert (await client.get(f"{JOBS}/{made.json()['id']}")).status_code == 200


async def test_slow_reads_leave_enqueue_its_connections(pg_dsn: str, tmp_path: Path) -> None:
    """Ten stuck list calls filled main's one pool, and every enqueue then waited without
    end. Reads have a pool of their own now, and a full pool is a 503 after its deadline."""
    env = {
        "JOBQUEUE_API_POOL_MAX": "2",
        "JOBQUEUE_API_READ_POOL_MAX": "2",
        "JOBQUEUE_DB_ACQUIRE_TIMEOUT": "2",
        "JOBQUEUE_DB_STATEMENT_TIMEOUT": "8",
    }
    with api_process(pg_dsn, tmp_path / "api.log", **env) as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
            async with locked(pg_dsn, "queues"):
                reads = [asyncio.create_task(client.get(QUEUES)) for _ in range(10)]
                await asyncio.sleep(1)  # the reads hold every connection of their pool
                for _ in range(5):
                    made = await client.post(JOBS, json={"job_type": "noop"}, timeout=15)
                    assert made.status_code == 201
                answers = await asyncio.gather(*reads)
            for answer in answers:
                assert_outage(answer)  # the pool's deadline, or the statement's
            assert (await client.get(QUEUES)).status_code == 200


async def fill_with_large_jobs(dsn: str, count: int, payload_bytes: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO jobs (job_type, payload, queue_name) "
            "SELECT 'noop', jsonb_build_object('blob', repeat(md5(g::text), $2 / 32)), 'big' "
            "FROM generate_series(1, $1) AS g",
            count,
            payload_bytes,
        )
    finally:
        await conn.close()


async def test_a_page_of_large_jobs_is_bounded_in_bytes(pg_dsn: str, tmp_path: Path) -> None:
    await fill_with_large_jobs(pg_dsn, 300, 200 * 1024)  # 60 MB of payloads
    with api_process(pg_dsn, tmp_path / "api.log") as api:
        pid = api.proc.pid
        async with httpx.AsyncClient(base_url=api.url, timeout=120) as client:
            reset_peak(pid)
            before = peak_rss(pid)
            first = await client.get(JOBS, params={"limit": 1000})
            grown = peak_rss(pid) - before
            assert first.status_code == 200
            assert grown < 40 * MiB, f"one page grew the API's peak memory by {grown / MiB:.0f} MiB"
            page = first.json()
            assert 1 <= len(page["jobs"]) < 300 and page["next_cursor"]
            # the cursor goes on where the page stopped: every job once, newest first
            seen = [job["id"] for job in page["jobs"]]
            while page["next_cursor"]:
                page = (
                    await client.get(JOBS, params={"limit": 1000, "cursor": page["next_cursor"]})
                ).json()
                seen += [job["id"] for job in page["jobs"]]
            assert len(seen) == 300 and seen == sorted(seen, reverse=True)
