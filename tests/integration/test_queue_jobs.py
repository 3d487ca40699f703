"""Enqueue, look up, cancel and retry against real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from worker.db import NEW_JOB_CHANNEL, claims, sql_files
from worker.db.connection import connect, create_pool
from worker.db.errors import JobNotFound, JobStateConflict
from worker.db.jobs import (
    Enqueued,
    Job,
    NewJob,
    cancel_job,
    enqueue,
    enqueue_many,
    enqueue_many_brief,
    get_job,
    retry_job,
)


async def test_enqueue_stores_every_field(pg_dsn: str) -> None:
    pool = await create_pool(pg_dsn, max_size=2)
    try:
        run_at = datetime.now(UTC) + timedelta(hours=1)
        job, created = await enqueue(
            pool,
            NewJob(
                "emails",
                {"to": "a@example.com"},
                queue_name="mail",
                priority=7,
                run_at=run_at,
                max_tries=5,
                idempotency_key="k-1",
                timeout_seconds=2.5,
            ),
        )
        assert created
        assert (job.job_type, job.payload, job.queue_name, job.priority) == (
            "emails",
            {"to": "a@example.com"},
            "mail",
            7,
        )
        assert (job.status, job.attempts, job.max_tries, job.timeout_seconds) == (
            "pending",
            0,
            5,
            2.5,
        )
        assert job.run_at == run_at and job.idempotency_key == "k-1"
        assert job.worker_id is None and job.started_at is None and job.result is None
        assert await get_job(pool, job.id) == job
        assert await get_job(pool, job.id + 1000) is None
        as_json = json.loads(json.dumps(job.to_dict()))
        assert as_json["run_at"] == run_at.isoformat() and as_json["status"] == "pending"
    finally:
        await pool.close()


async def test_delay_sets_run_at_later(conn: asyncpg.Connection) -> None:
    (now_job, _), (later, _) = await enqueue_many(
        conn, [NewJob("noop"), NewJob("noop", delay_seconds=600)]
    )
    assert timedelta(seconds=599) < later.run_at - now_job.run_at < timedelta(seconds=601)


@pytest.mark.parametrize("codec", [True, False], ids=["project codecs", "plain asyncpg"])
async def test_each_column_lands_whether_sent_per_job_once_or_not_at_all(
    pg_dsn: str, codec: bool
) -> None:
    # insert_jobs sends a column every job shares once, one no job sets as NULL, the payloads
    # as one JSON array: whatever the mix, each job keeps its own values, on any connection.
    conn = await (connect(pg_dsn) if codec else asyncpg.connect(pg_dsn))
    try:
        at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        shared = [
            NewJob(
                "s",
                {"n": i, "é": [i]},
                queue_name="q",
                priority=4,
                max_tries=9,
                run_at=at,
                timeout_seconds=3.0,
                concurrency_key="tenant",
            )
            for i in range(3)
        ]
        mixed = [
            NewJob("a", {"n": 0}, queue_name="q1", priority=1, max_tries=1),
            NewJob("b", {}, queue_name="q2", run_at=at, concurrency_key="t2"),
            NewJob("a", {"n": 2}, priority=-3, delay_seconds=3600.0, timeout_seconds=1.5),
        ]
        for batch in (shared, mixed, shared[:1], [*shared, *mixed]):
            before = datetime.now(UTC)
            result = await enqueue_many(conn, batch)
            for (job, created), new in zip(result, batch, strict=True):
                assert created
                stored = await get_job(conn, job.id)
                assert stored is not None
                assert (stored.job_type, stored.payload, stored.queue_name) == (
                    new.job_type,
                    new.payload,
                    new.queue_name,
                )
                assert (stored.priority, stored.max_tries, stored.timeout_seconds) == (
                    new.priority,
                    new.max_tries,
                    new.timeout_seconds,
                )
                key = await conn.fetchval("SELECT concurrency_key FROM jobs WHERE id = $1", job.id)
                assert key == new.concurrency_key
                if new.run_at is not None:
                    assert stored.run_at == new.run_at
                elif new.delay_seconds is not None:
                    assert stored.run_at >= before + timedelta(seconds=new.delay_seconds)
                else:
                    assert stored.run_at < before + timedelta(minutes=5)
    finally:
        await conn.close()


async def test_batch_keeps_order_and_idempotency(conn: asyncpg.Connection) -> None:
    ((first, created),) = await enqueue_many(conn, [NewJob("t", {"n": 0}, idempotency_key="a")])
    assert created
    batch = [
        NewJob("t", {"n": i}, idempotency_key=key)
        for i, key in enumerate(["x", "a", None, "y", "x", None], start=1)
    ]
    result = await enqueue_many(conn, batch)
    assert [created for _, created in result] == [True, False, True, True, False, True]
    assert [job.payload["n"] for job, _ in result] == [1, 0, 3, 4, 1, 6]
    assert result[1][0].id == first.id and result[4][0].id == result[0][0].id
    assert await conn.fetchval("SELECT count(*) FROM jobs") == 5
    assert await enqueue_many(conn, []) == []


async def test_brief_batch_keeps_order_and_idempotency(conn: asyncpg.Connection) -> None:
    ((old, _),) = await enqueue_many(conn, [NewJob("t", idempotency_key="old", queue_name="q")])
    batch = [
        NewJob("t", {"n": i}, idempotency_key=key, queue_name=queue)
        for i, (key, queue) in enumerate(
            [("x", "a"), ("old", "q"), (None, "b"), ("x", "a"), (None, "a"), ("y", "b")]
        )
    ]
    result = await enqueue_many_brief(conn, batch)
    assert all(type(item) is Enqueued for item, _ in result)
    assert [created for _, created in result] == [True, False, True, False, True, True]
    ids = [item.id for item, _ in result]
    assert ids[1] == old.id and ids[3] == ids[0]
    assert ids[0] < ids[2] < ids[4] < ids[5]  # inserted in input order
    for (item, _), new in zip(result, batch, strict=True):
        job = await get_job(conn, item.id)
        assert job is not None
        assert (item.queue_name, item.status) == (job.queue_name, job.status)
        assert (job.queue_name, job.status) == (new.queue_name, "pending")
        assert job.idempotency_key == new.idempotency_key
    assert await conn.fetchval("SELECT count(*) FROM jobs") == 5
    # again: every key now exists before the statement runs
    keyed = [new for new in batch if new.idempotency_key is not None]
    again = await enqueue_many_brief(conn, keyed)
    assert [(item.id, created) for item, created in again] == [
        (ids[0], False),
        (ids[1], False),
        (ids[0], False),
        (ids[5], False),
    ]
    assert await enqueue_many_brief(conn, []) == []


async def test_concurrent_duplicate_keys_make_one_job_brief(pg_dsn: str) -> None:
    # the losers' statements cannot see the winner's row: they read the keys again
    pool = await create_pool(pg_dsn, min_size=8, max_size=8)
    try:
        batches = [[NewJob("t", idempotency_key="same"), NewJob("t")] for _ in range(16)]
        results = await asyncio.gather(*(enqueue_many_brief(pool, b) for b in batches))
        assert len({pairs[0][0].id for pairs in results}) == 1
        assert sum(pairs[0][1] for pairs in results) == 1
        assert all(pairs[1][1] for pairs in results)
        assert len({pairs[1][0].id for pairs in results}) == 16
        assert await pool.fetchval("SELECT count(*) FROM jobs") == 17
    finally:
        await pool.close()


def test_brief_insert_is_the_full_insert_with_fewer_columns() -> None:
    # one insert logic: the two statements may differ only in what they return
    full, brief = (sql_files.query("jobs", name) for name in ("insert_jobs", "insert_jobs_brief"))
    columns = "id, idempotency_key, status, queue_name"

    def logic(statement: str) -> str:
        return statement[statement.index("WITH input AS") :]

    assert logic(brief) == logic(full).replace("RETURNING *", f"RETURNING {columns}").replace(
        "false AS created, *", f"false AS created, {columns}"
    )


async def test_concurrent_duplicate_keys_make_one_job(pg_dsn: str) -> None:
    pool = await create_pool(pg_dsn, min_size=8, max_size=8)
    try:
        results = await asyncio.gather(
            *(enqueue(pool, NewJob("t", idempotency_key="same")) for _ in range(16))
        )
        assert len({job.id for job, _ in results}) == 1
        assert sum(created for _, created in results) == 1
    finally:
        await pool.close()


async def test_enqueue_inside_the_callers_transaction(pg_dsn: str) -> None:
    # a plain asyncpg connection, without the project's codecs, works too
    conn = await asyncpg.connect(pg_dsn)
    try:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                job, _ = await enqueue(conn, NewJob("t", {"a": [1]}))
                assert job.payload == {"a": [1]}
                raise RuntimeError("roll back")
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 0
        async with conn.transaction():
            job, _ = await enqueue(conn, NewJob("t"))
        assert (await get_job(conn, job.id)) is not None
    finally:
        await conn.close()


async def test_one_notification_per_statement_and_queue(pg_dsn: str) -> None:
    listener = await asyncpg.connect(pg_dsn)
    heard: list[str] = []
    await listener.add_listener(NEW_JOB_CHANNEL, lambda *args: heard.append(args[3]))
    conn = await connect(pg_dsn)
    try:
        await enqueue_many(
            conn,
            [NewJob("t", queue_name="a") for _ in range(50)]
            + [NewJob("t", queue_name="b") for _ in range(50)],
        )
        await enqueue_many(conn, [NewJob("t", queue_name="a") for _ in range(10)])
        await enqueue_many_brief(
            conn, [NewJob("t", queue_name="c") for _ in range(10)] + [NewJob("t", queue_name="b")]
        )
        await listener.execute("SELECT 1")  # notifications arrive before this reply
        await asyncio.sleep(0.2)
        assert sorted(heard) == ["a", "a", "b", "b", "c"]
    finally:
        await conn.close()
        await listener.close()


async def _claimed(conn: asyncpg.Connection, job: Job) -> claims.ClaimedJob:
    (claimed,) = await claims.claim_jobs(conn, [job.queue_name], 1, uuid.uuid4(), 30)
    assert claimed.id == job.id
    return claimed


async def test_cancel(pg_dsn: str) -> None:
    conn = await connect(pg_dsn)
    listener = await asyncpg.connect(pg_dsn)
    cancels: list[str] = []
    await listener.add_listener("jobqueue_cancel", lambda *args: cancels.append(args[3]))
    try:
        pending, _ = await enqueue(conn, NewJob("t", queue_name="p"))
        cancelled = await cancel_job(conn, pending.id)
        assert cancelled.status == "cancelled" and cancelled.finished_at is not None

        running, _ = await enqueue(conn, NewJob("t", queue_name="r"))
        claimed = await _claimed(conn, running)
        cancelled = await cancel_job(conn, running.id)
        assert cancelled.status == "cancelled" and cancelled.worker_id is not None
        # the worker's fenced write now changes nothing
        assert (
            await claims.complete_jobs(
                conn, cancelled.worker_id, [claimed.id], [claimed.attempts], ["{}"]
            )
            == 0
        )
        assert (await get_job(conn, running.id)).status == "cancelled"

        await listener.execute("SELECT 1")
        await asyncio.sleep(0.2)
        assert cancels == [str(running.id)]  # only a running job's worker needs telling

        with pytest.raises(JobStateConflict) as conflict:
            await cancel_job(conn, running.id)
        assert (conflict.value.status, conflict.value.action) == ("cancelled", "cancel")
        with pytest.raises(JobNotFound):
            await cancel_job(conn, 10**9)
    finally:
        await conn.close()
        await listener.close()


async def test_retry_gives_a_failed_job_another_try(conn: asyncpg.Connection) -> None:
    job, _ = await enqueue(conn, NewJob("t", max_tries=1))
    claimed = await _claimed(conn, job)
    worker = (await get_job(conn, job.id)).worker_id
    await claims.fail_jobs(conn, worker, [job.id], [claimed.attempts], ["boom"], [None])
    failed = await get_job(conn, job.id)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 1, "boom")

    retried = await retry_job(conn, job.id)
    assert (retried.status, retried.worker_id, retried.finished_at) == ("pending", None, None)
    assert retried.max_tries > retried.attempts
    assert retried.last_error is None  # a retry starts afresh; job_errors keeps the record

    with pytest.raises(JobStateConflict) as conflict:
        await retry_job(conn, job.id)
    assert conflict.value.status == "pending"
    with pytest.raises(JobNotFound):
        await retry_job(conn, 10**9)

    cancelled, _ = await enqueue(conn, NewJob("t"))
    await cancel_job(conn, cancelled.id)
    assert (await retry_job(conn, cancelled.id)).status == "pending"
