"""An acknowledgement that cannot be written for a reason other than the server's refusal
fails no job: it is tried again, and if that keeps failing the job is abandoned (it stays
running under this worker, for the rescuer once the worker's lease lapses). Here the error is
asyncpg's own "another operation is in progress", from a real connection that is busy, as a
pooled connection can answer for a moment while the server tears it down (a PostgreSQL
restart once failed a job this way)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from worker.db import claims
from worker.db.connection import create_pool
from worker.db.jobs import NewJob, enqueue_many
from worker.runtime.acks import AckBuffer
from worker.runtime.metrics import WorkerMetrics
from worker.runtime.tracker import Tracker


async def _acks_for_one_job(
    pg_dsn: str, conn: asyncpg.Connection
) -> tuple[AckBuffer, Tracker, tuple[int, int, str], asyncpg.Pool]:
    await enqueue_many(conn, [NewJob("noop")])
    worker = uuid.uuid4()
    (claimed,) = await claims.claim_jobs(conn, ["default"], 1, worker, 60)
    pool = await create_pool(pg_dsn, min_size=1, max_size=1)
    tracker = Tracker(4)
    return (
        AckBuffer(pool, worker, 10, WorkerMetrics(), tracker),
        tracker,
        (claimed.id, claimed.attempts, "{}"),
        pool,
    )


async def test_a_write_that_is_no_verdict_is_tried_again(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    acks, tracker, item, pool = await _acks_for_one_job(pg_dsn, conn)
    busy = await asyncpg.connect(pg_dsn)
    sleeping = asyncio.create_task(busy.execute("SELECT pg_sleep(0.4)"))
    refused: list[int] = []
    calls = 0

    async def write_on_the_busy_connection(items: list[tuple[int, int, str]]) -> int:
        nonlocal calls
        calls += 1  # asyncpg: another operation is in progress, until the sleep is over
        return int(await busy.fetchval("SELECT 1"))

    async def refusal(item: tuple[int, int, str], exc: Exception) -> None:
        refused.append(item[0])

    try:
        await asyncio.sleep(0.1)
        await acks._one_by_one([item], write_on_the_busy_connection, "complete job", refusal)
        assert calls > 1  # the first try met the busy connection, a later one got through
        assert (refused, tracker.abandoned) == ([], set())
    finally:
        await sleeping
        await busy.close()
        await pool.close()


async def test_a_write_that_stays_no_verdict_abandons_the_job_unfailed(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    acks, tracker, item, pool = await _acks_for_one_job(pg_dsn, conn)
    busy = await asyncpg.connect(pg_dsn)
    sleeping = asyncio.create_task(busy.execute("SELECT pg_sleep(30)"))
    refused: list[int] = []

    async def write_on_the_busy_connection(items: list[tuple[int, int, str]]) -> int:
        return int(await busy.fetchval("SELECT 1"))

    async def refusal(item: tuple[int, int, str], exc: Exception) -> None:
        refused.append(item[0])

    try:
        await asyncio.sleep(0.1)
        await acks._one_by_one([item], write_on_the_busy_connection, "complete job", refusal)
        assert refused == []  # no verdict on the job: it is not failed
        assert tracker.abandoned == {item[0]}  # left running, for the rescuer
        row = await conn.fetchrow("SELECT status::text FROM jobs WHERE id = $1", item[0])
        assert row["status"] == "running"
    finally:
        sleeping.cancel()
        busy.terminate()
        await pool.close()
