"""An acknowledgement that cannot be written for a reason other than the server's refusal
fails no job: the job stays running under its lease, for the rescuer to hand out again. Here
the error is asyncpg's own "another operation is in progress", from a real connection that is
busy, as a pooled connection can answer for a moment while the server tears it down (a
PostgreSQL restart once failed a job this way)."""

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


async def test_a_write_that_is_no_verdict_leaves_the_job_to_its_lease(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    ((job, _),) = await enqueue_many(conn, [NewJob("noop")])
    worker = uuid.uuid4()
    (claimed,) = await claims.claim_jobs(conn, ["default"], 1, worker, 60)
    pool = await create_pool(pg_dsn, min_size=1, max_size=1)
    busy = await asyncpg.connect(pg_dsn)
    sleeping = asyncio.create_task(busy.execute("SELECT pg_sleep(0.5)"))
    try:
        await asyncio.sleep(0.1)
        tracker = Tracker(4)
        acks = AckBuffer(pool, worker, 10, WorkerMetrics(), tracker)
        refused: list[int] = []

        async def write_on_the_busy_connection(items: list[tuple[int, int, str]]) -> int:
            return int(await busy.fetchval("SELECT 1"))  # asyncpg: another operation in progress

        async def refusal(item: tuple[int, int, str], exc: Exception) -> None:
            refused.append(item[0])

        item = (claimed.id, claimed.attempts, "{}")
        await acks._one_by_one([item], write_on_the_busy_connection, "complete job", refusal)
        assert refused == []  # no verdict on the job: it is not failed
        assert tracker.abandoned == {job.id}  # left running for its lease to expire
        row = await conn.fetchrow("SELECT status::text, worker_id FROM jobs WHERE id = $1", job.id)
        assert (row["status"], row["worker_id"]) == ("running", worker)
    finally:
        await sleeping
        await busy.close()
        await pool.close()
