"""Batches with a completion callback against real PostgreSQL: the callback is enqueued once
every job is terminal, whatever the outcomes, and exactly once when the last two jobs finish at
the same moment on two workers."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg

from tests.integration.queue_support import eventually
from worker.db import claims, maintenance
from worker.db.jobs import NewJob
from worker.db.workflows import WorkflowItem, enqueue_batch, get_batch


async def _batch(
    conn: asyncpg.Connection, size: int, callback: str = "done"
) -> tuple[int, list[int]]:
    async with conn.transaction():
        enqueued = await enqueue_batch(
            conn,
            [WorkflowItem(NewJob("work", payload={"n": i})) for i in range(size)],
            on_complete=NewJob(callback, payload={"note": "all done"}, queue_name="callbacks"),
        )
    assert enqueued.batch_id is not None and enqueued.callback_job_id is None
    return enqueued.batch_id, [job_id for job_id, _, _ in enqueued.jobs]


async def _claim_all(conn: asyncpg.Connection, count: int) -> dict[int, tuple[uuid.UUID, int]]:
    """Claim every `work` job, one fake worker per job: id -> (worker id, attempts)."""
    owners: dict[int, tuple[uuid.UUID, int]] = {}
    while len(owners) < count:
        worker = uuid.uuid4()
        for job in await claims.claim_jobs(conn, ["default"], 1, worker, 60):
            owners[job.id] = (worker, job.attempts)
    return owners


async def _callbacks(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, job_type, queue_name, payload::text AS payload FROM jobs"
        " WHERE queue_name = 'callbacks' ORDER BY id"
    )


async def test_the_callback_carries_the_batch_and_its_counts(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        batch_id, ids = await _batch(conn, 3)
        owners = await _claim_all(conn, 3)
        first, second, third = ids
        worker, attempts = owners[first]
        assert await claims.complete_jobs(conn, worker, [first], [attempts], ["1"]) == 1
        worker, attempts = owners[second]
        assert await claims.fail_jobs(conn, worker, [second], [attempts], ["no"], [None]) == 1
        assert await _callbacks(conn) == []
        shown = await get_batch(conn, batch_id)
        assert shown is not None and shown.finished == 2 and shown.callback_job_id is None
        assert shown.counts == {"completed": 1, "failed": 1, "running": 1}
        await conn.execute("UPDATE jobs SET status = 'cancelled' WHERE id = $1", third)
        # a cancel through the data layer follows up; a raw UPDATE does not, so do it by hand
        await conn.fetchval("SELECT jobqueue_jobs_finished($1::bigint[])", [third])
        (callback,) = await _callbacks(conn)
        assert callback["job_type"] == "done"
        assert json.loads(callback["payload"]) == {
            "note": "all done",
            "batch_id": batch_id,
            "counts": {"completed": 1, "failed": 1, "cancelled": 1},
        }
        shown = await get_batch(conn, batch_id)
        assert shown is not None and shown.callback_job_id == callback["id"]
        assert shown.completed_at is not None
    finally:
        await conn.close()


async def test_a_retry_with_tries_left_is_not_terminal(conn: asyncpg.Connection) -> None:
    _, (only,) = await _batch(conn, 1)
    owners = await _claim_all(conn, 1)
    worker, attempts = owners[only]
    await claims.fail_jobs(conn, worker, [only], [attempts], ["again"], [0.0])
    assert await _callbacks(conn) == []


async def _finish_in_parallel(dsn: str, owners: dict[int, tuple[uuid.UUID, int]]) -> None:
    """The last two jobs acknowledged at the same moment from two connections (two workers)."""
    conns = [await asyncpg.connect(dsn) for _ in owners]
    try:
        start = asyncio.Event()

        async def ack(conn: asyncpg.Connection, job_id: int) -> int:
            worker, attempts = owners[job_id]
            await start.wait()
            return await claims.complete_jobs(conn, worker, [job_id], [attempts], ["null"])

        tasks = [
            asyncio.create_task(ack(conn, job_id))
            for conn, job_id in zip(conns, owners, strict=True)
        ]
        await asyncio.sleep(0)
        start.set()
        assert await asyncio.gather(*tasks) == [1, 1]
    finally:
        for conn in conns:
            await conn.close()


async def test_the_last_two_finishing_at_once_enqueue_one_callback(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        for _ in range(25):
            batch_id, _ = await _batch(conn, 2)
            owners = await _claim_all(conn, 2)
            await _finish_in_parallel(pg_dsn, owners)
            rows = await conn.fetch(
                "SELECT id FROM jobs WHERE queue_name = 'callbacks'"
                " AND (payload ->> 'batch_id')::bigint = $1",
                batch_id,
            )
            assert len(rows) == 1, f"batch {batch_id}: {len(rows)} callbacks"
            await conn.execute("DELETE FROM jobs WHERE status::text <> 'pending'")
    finally:
        await conn.close()


async def test_the_second_finisher_waits_for_the_first_and_sees_the_batch_done(
    pg_dsn: str,
) -> None:
    """The interleaving made certain: the first acknowledgement holds its transaction open
    while the second one runs; the second must wait for it, then enqueue the one callback."""
    conn = await asyncpg.connect(pg_dsn)
    first_conn = await asyncpg.connect(pg_dsn)
    second_conn = await asyncpg.connect(pg_dsn)
    try:
        _, (one, two) = await _batch(conn, 2)
        owners = await _claim_all(conn, 2)
        transaction = first_conn.transaction()
        await transaction.start()
        worker, attempts = owners[one]
        await claims.complete_jobs(first_conn, worker, [one], [attempts], ["null"])
        worker, attempts = owners[two]
        second = asyncio.create_task(
            claims.complete_jobs(second_conn, worker, [two], [attempts], ["null"])
        )

        async def second_is_waiting() -> bool:
            return bool(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )

        await eventually(second_is_waiting, what="the second acknowledgement to wait")
        assert not second.done()
        await transaction.commit()
        assert await second == 1
        assert len(await _callbacks(conn)) == 1
    finally:
        for c in (conn, first_conn, second_conn):
            await c.close()


async def test_a_batch_born_finished_gets_its_callback_at_once(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        failed = await conn.fetchval(
            "INSERT INTO jobs (job_type, status) VALUES ('x', 'failed') RETURNING id"
        )
        async with conn.transaction():
            enqueued = await enqueue_batch(
                conn,
                [WorkflowItem(NewJob("work"), depends_on=[failed])],
                on_complete=NewJob("done", queue_name="callbacks"),
            )
        assert enqueued.jobs[0][1] == "cancelled"
        (callback,) = await _callbacks(conn)
        assert enqueued.callback_job_id == callback["id"]
        assert json.loads(callback["payload"])["counts"] == {"cancelled": 1}
    finally:
        await conn.close()


async def test_the_cleaner_prunes_completed_batches_past_the_retention(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        old, (old_job,) = await _batch(conn, 1)
        recent, (recent_job,) = await _batch(conn, 1)
        still_open, _ = await _batch(conn, 1)
        for batch_id, job_id in ((old, old_job), (recent, recent_job)):
            owners = await _claim_all(conn, 1)  # claim order is id order: this batch's job
            worker, attempts = owners[job_id]
            assert await claims.complete_jobs(conn, worker, [job_id], [attempts], ["1"]) == 1
            shown = await get_batch(conn, batch_id)
            assert shown is not None and shown.completed_at is not None
        await conn.execute(
            "UPDATE batches SET completed_at = now() - interval '2 hours' WHERE id = $1", old
        )
        assert await maintenance.prune_batches(conn, 3600, 10) == 1
        assert await get_batch(conn, old) is None
        assert await get_batch(conn, recent) is not None
        assert await get_batch(conn, still_open) is not None  # open: never pruned, however old
        await conn.execute("UPDATE batches SET created_at = now() - interval '1 day'")
        assert await maintenance.prune_batches(conn, 3600, 10) == 0
    finally:
        await conn.close()
