"""An acknowledgement that cannot be written for a reason other than the server's refusal
fails no job: it is tried again, and if that keeps failing the job is abandoned (it stays
running under this worker, for the rescuer once the worker's lease lapses). Here the error is
asyncpg's own "another operation is in progress", from a real connection that is busy, as a
pooled connection can answer for a moment while the server tears it down (a PostgreSQL
restart once failed a job this way)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import asyncpg

from worker.db import claims
from worker.db.connection import create_pool
from worker.db.jobs import NewJob, enqueue_many
from worker.runtime.acks import AckBuffer
from worker.runtime.metrics import WorkerMetrics
from worker.runtime.tracker import Tracker

Item = tuple[int, int, str]


@dataclass
class Attempt:
    """One job's acknowledgement written one by one, on a connection busy for `busy_seconds`
    (asyncpg answers "another operation is in progress" until then): what happened to it."""

    tracker: Tracker
    item: Item
    calls: int = 0
    refused: list[int] = field(default_factory=list)


async def _acknowledge_on_a_busy_connection(
    pg_dsn: str, conn: asyncpg.Connection, busy_seconds: float
) -> Attempt:
    await enqueue_many(conn, [NewJob("noop")])
    worker = uuid.uuid4()
    (claimed,) = await claims.claim_jobs(conn, ["default"], 1, worker, 60)
    attempt = Attempt(Tracker(4), (claimed.id, claimed.attempts, "{}"))
    pool = await create_pool(pg_dsn, min_size=1, max_size=1)
    acks = AckBuffer(pool, worker, 10, WorkerMetrics(), attempt.tracker)
    busy = await asyncpg.connect(pg_dsn)
    sleeping = asyncio.create_task(busy.execute(f"SELECT pg_sleep({busy_seconds})"))

    async def write_on_the_busy_connection(items: list[Item]) -> int:
        attempt.calls += 1
        return int(await busy.fetchval("SELECT 1"))

    async def refusal(item: Item, exc: Exception) -> None:
        attempt.refused.append(item[0])

    try:
        await asyncio.sleep(0.1)  # the sleep is under way
        await acks._one_by_one([attempt.item], write_on_the_busy_connection, "complete", refusal)
    finally:
        sleeping.cancel()
        busy.terminate()
        await pool.close()
    return attempt


async def test_a_write_that_is_no_verdict_is_tried_again(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    attempt = await _acknowledge_on_a_busy_connection(pg_dsn, conn, 0.4)
    assert attempt.calls > 1  # the first try met the busy connection, a later one got through
    assert (attempt.refused, attempt.tracker.abandoned) == ([], set())


async def test_a_write_that_stays_no_verdict_abandons_the_job_unfailed(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    attempt = await _acknowledge_on_a_busy_connection(pg_dsn, conn, 30)
    assert attempt.refused == []  # no verdict on the job: it is not failed
    job_id = attempt.item[0]
    assert attempt.tracker.abandoned == {job_id}  # left running, for the rescuer
    row = await conn.fetchrow("SELECT status::text FROM jobs WHERE id = $1", job_id)
    assert row["status"] == "running"
