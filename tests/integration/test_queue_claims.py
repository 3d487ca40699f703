"""Claims, fenced acknowledgements, releases, rescue and retention against real PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from worker.db import claims, maintenance
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue_many, get_job


async def _worker(conn: asyncpg.Connection, lease: float = 30) -> uuid.UUID:
    worker_id = uuid.uuid4()
    await claims.register_worker(conn, worker_id, "w", ["default"], 4, 0, lease)
    return worker_id


async def test_claim_order_is_priority_then_run_at_then_id(conn: asyncpg.Connection) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    jobs = await enqueue_many(
        conn,
        [
            NewJob("t", {"n": 0}),
            NewJob("t", {"n": 1}, priority=5),
            NewJob("t", {"n": 2}, run_at=past),
            NewJob("t", {"n": 3}, priority=5, run_at=past),
            NewJob("t", {"n": 4}, priority=-1, run_at=past - timedelta(hours=1)),
            NewJob("t", {"n": 5}),
            NewJob("t", {"n": 6}, priority=100, delay_seconds=3600),  # not due
        ],
    )
    worker = await _worker(conn)
    order = []
    for _ in range(4):
        batch = await claims.claim_jobs(conn, ["default"], 2, worker, 30)
        order += [job.payload["n"] for job in batch]
    assert order == [3, 1, 2, 0, 5, 4]
    assert (await get_job(conn, jobs[6][0].id)).status == "pending"


async def test_one_claim_spans_queues_and_fills_the_free_slots(conn: asyncpg.Connection) -> None:
    await enqueue_many(
        conn,
        [NewJob("t", queue_name="a") for _ in range(3)]
        + [NewJob("t", queue_name="b", priority=1) for _ in range(3)]
        + [NewJob("t", queue_name="c") for _ in range(3)],
    )
    worker = await _worker(conn)
    batch = await claims.claim_jobs(conn, ["a", "b"], 5, worker, 30)
    assert [job.queue_name for job in batch] == ["b", "b", "b", "a", "a"]
    assert all(job.attempts == 1 for job in batch)
    rest = await claims.claim_jobs(conn, ["a", "b"], 5, worker, 30)
    assert [job.queue_name for job in rest] == ["a"]
    rows = await conn.fetch(
        "SELECT status, worker_id, lease_expires_at > now() AS leased FROM jobs WHERE id = $1",
        batch[0].id,
    )
    assert rows[0]["status"] == "running" and rows[0]["worker_id"] == worker and rows[0]["leased"]


async def test_claim_is_served_by_the_ready_rings_index(conn: asyncpg.Connection) -> None:
    """Layout 2 (migration 0017): the work is found in the ready ring, by its index on every
    slot, and the jobs are then reached by primary key; `jobs` is never scanned."""
    await enqueue_many(conn, [NewJob("t") for _ in range(2000)])
    await conn.execute("ANALYZE jobs")
    await conn.execute("ANALYZE job_ready")
    async with conn.transaction():
        plan = await conn.fetch(
            "EXPLAIN " + claims._sql("claim_jobs"), ["default"], 10, uuid.uuid4(), 30.0, None
        )
    text = "\n".join(row[0] for row in plan)
    assert "_queue_name_priority_run_at_job_id_idx on job_ready_" in text, text
    assert "Index Scan using jobs_pkey on jobs" in text, text
    assert "Tid Scan on job_ready_" in text, text  # the entries taken, by address
    assert "Seq Scan on jobs" not in text, text
    # a slot is scanned only where its statistics say it is empty (and then it is pruned)
    scans = re.findall(r"Seq Scan on job_ready_\d+ \S+\s+\(cost=[\d.]+\.\.([\d.]+)", text)
    assert all(float(cost) == 0 for cost in scans), text


async def test_the_claim_keeps_one_plan_rather_than_planning_every_call(
    conn: asyncpg.Connection,
) -> None:
    """Once ANALYZE has seen a backlog in the ring, a plan made for the claim's own arguments
    looked cheaper than the generic one, so the server planned the claim anew on every call:
    about 1 ms of its CPU per claim, more than a small batch's whole execution. The claim
    reads its queues and batch size through subqueries, so after its first five runs the
    server keeps one generic plan (pg_prepared_statements counts both kinds)."""
    await enqueue_many(conn, [NewJob("t") for _ in range(20_000)])
    await conn.execute("ANALYZE jobs")
    await conn.execute("ANALYZE job_ready")
    worker = uuid.uuid4()
    for _ in range(20):
        assert len(await claims.claim_jobs(conn, ["default"], 3, worker, 30.0)) == 3
    custom, generic = await conn.fetchrow(
        "SELECT custom_plans, generic_plans FROM pg_prepared_statements WHERE statement = $1",
        claims._sql("claim_jobs"),
    )
    assert (custom, generic) == (5, 15)


async def test_concurrent_claims_skip_locked_rows(pg_dsn: str) -> None:
    conns = [await connect(pg_dsn) for _ in range(4)]
    try:
        await enqueue_many(conns[0], [NewJob("t") for _ in range(400)])
        worker = await _worker(conns[0])

        async def drain(c: asyncpg.Connection) -> list[int]:
            got: list[int] = []
            while batch := await claims.claim_jobs(c, ["default"], 7, worker, 30):
                got += [job.id for job in batch]
            return got

        results = await asyncio.gather(*(drain(c) for c in conns))
        everything = [job_id for ids in results for job_id in ids]
        assert len(everything) == 400 == len(set(everything))
    finally:
        for c in conns:
            await c.close()


async def test_acks_are_fenced_by_worker_and_attempt(conn: asyncpg.Connection) -> None:
    ((job, _),) = await enqueue_many(conn, [NewJob("t")])
    stale = await _worker(conn)
    (first,) = await claims.claim_jobs(conn, ["default"], 1, stale, 30)
    # the stale worker's claim went back to pending (as a rescue would do) and another took it
    await conn.execute("UPDATE jobs SET status = 'pending', worker_id = NULL WHERE id = $1", job.id)
    fresh = await _worker(conn)
    (second,) = await claims.claim_jobs(conn, ["default"], 1, fresh, 30)
    assert second.attempts == first.attempts + 1

    assert await claims.complete_jobs(conn, stale, [job.id], [first.attempts], ['"stale"']) == 0
    assert await claims.fail_jobs(conn, stale, [job.id], [first.attempts], ["x"], [None]) == 0
    assert await claims.release_jobs(conn, stale, [job.id], [first.attempts]) == 0
    # the right worker with an old token changes nothing either
    assert await claims.complete_jobs(conn, fresh, [job.id], [first.attempts], ['"old"']) == 0
    assert (await get_job(conn, job.id)).status == "running"

    assert await claims.complete_jobs(conn, fresh, [job.id], [second.attempts], ['{"ok": 1}']) == 1
    done = await get_job(conn, job.id)
    assert (done.status, done.result, done.worker_id) == ("completed", {"ok": 1}, fresh)
    assert done.finished_at is not None
    # a repeated acknowledgement (a retried write) changes nothing
    assert await claims.complete_jobs(conn, fresh, [job.id], [second.attempts], ['"again"']) == 0
    assert (await get_job(conn, job.id)).result == {"ok": 1}


async def test_batched_failures_retry_later_or_fail_for_good(conn: asyncpg.Connection) -> None:
    await enqueue_many(conn, [NewJob("t") for _ in range(2)])
    worker = await _worker(conn)
    retry, final = await claims.claim_jobs(conn, ["default"], 2, worker, 30)
    written = await claims.fail_jobs(
        conn,
        worker,
        [retry.id, final.id],
        [retry.attempts, final.attempts],
        ["try again", "bad input"],
        [120.0, None],
    )
    assert written == 2
    again = await get_job(conn, retry.id)
    assert (again.status, again.attempts, again.last_error, again.worker_id) == (
        "pending",
        1,
        "try again",
        None,
    )
    assert again.run_at > datetime.now(UTC) + timedelta(seconds=100)
    assert await claims.claim_jobs(conn, ["default"], 2, worker, 30) == []  # not due yet
    failed = await get_job(conn, final.id)
    assert (failed.status, failed.last_error, failed.worker_id) == ("failed", "bad input", worker)
    assert failed.finished_at is not None


async def test_release_gives_back_without_using_a_try(conn: asyncpg.Connection) -> None:
    await enqueue_many(conn, [NewJob("t") for _ in range(3)])
    worker = await _worker(conn)
    batch = await claims.claim_jobs(conn, ["default"], 3, worker, 30)
    assert await claims.release_jobs(conn, worker, [batch[0].id], [batch[0].attempts]) == 1
    # a lost claim reply: the worker only knows batch[1]
    assert await claims.release_unknown_jobs(conn, worker, [batch[1].id]) == 1
    rows = await conn.fetch("SELECT id, status, attempts, worker_id FROM jobs ORDER BY id")
    by_id = {row["id"]: row for row in rows}
    for job in (batch[0], batch[2]):
        assert (by_id[job.id]["status"], by_id[job.id]["attempts"]) == ("pending", 0)
        assert by_id[job.id]["worker_id"] is None
    assert by_id[batch[1].id]["status"] == "running"


async def test_lost_jobs_names_those_no_longer_ours(conn: asyncpg.Connection) -> None:
    jobs = await enqueue_many(conn, [NewJob("t") for _ in range(3)])
    worker = await _worker(conn)
    batch = await claims.claim_jobs(conn, ["default"], 3, worker, 30)
    await conn.execute("UPDATE jobs SET status = 'cancelled' WHERE id = $1", batch[0].id)
    await conn.execute("DELETE FROM jobs WHERE id = $1", batch[1].id)
    lost = await claims.lost_jobs(conn, worker, [j.id for j in batch], [j.attempts for j in batch])
    assert sorted(lost) == sorted([batch[0].id, batch[1].id])
    assert jobs  # enqueued


async def _age_lease(conn: asyncpg.Connection, job_id: int) -> None:
    await conn.execute(
        "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1", job_id
    )


async def test_rescue_only_takes_jobs_of_dead_workers(conn: asyncpg.Connection) -> None:
    await enqueue_many(
        conn, [NewJob("t", max_tries=3), NewJob("t", max_tries=1), NewJob("t"), NewJob("t")]
    )
    dead = await _worker(conn, lease=30)
    alive = await _worker(conn, lease=30)
    retry, last_try = await claims.claim_jobs(conn, ["default"], 2, dead, 30)
    (kept,) = await claims.claim_jobs(conn, ["default"], 1, alive, 30)
    (young,) = await claims.claim_jobs(conn, ["default"], 1, uuid.uuid4(), 30)  # unregistered
    await conn.execute(
        "UPDATE workers SET lease_expires_at = now() - interval '1 second' WHERE id = $1", dead
    )
    for job in (retry, last_try, kept):
        await _age_lease(conn, job.id)

    result = await maintenance.rescue_expired_leases(conn)
    assert result == maintenance.RescueResult(requeued=1, failed=1)
    back = await get_job(conn, retry.id)
    assert (back.status, back.worker_id, back.attempts) == ("pending", None, 1)
    assert "lease expired" in (back.last_error or "")
    gone = await get_job(conn, last_try.id)
    assert (gone.status, gone.worker_id) == ("failed", dead)
    # a live worker's job stays, however old its claim; so does a fresh claim
    assert (await get_job(conn, kept.id)).status == "running"
    assert (await get_job(conn, young.id)).status == "running"
    assert await maintenance.rescue_expired_leases(conn) == maintenance.RescueResult(0, 0)


async def test_one_sweeper_at_a_time(pg_dsn: str, conn: asyncpg.Connection) -> None:
    other = await connect(pg_dsn)
    try:
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock($1)", maintenance.RESCUE_LOCK_KEY)
            assert await maintenance.rescue_expired_leases(conn) is None
            await other.execute("SELECT pg_advisory_xact_lock($1)", maintenance.RETENTION_LOCK_KEY)
            assert await maintenance.prune_finished_batch(conn, 0, 10) is None
        # the locks were transaction-scoped: gone with the transaction
        assert await maintenance.rescue_expired_leases(conn) is not None
        assert await maintenance.prune_finished_batch(conn, 0, 10) == 0
    finally:
        await other.close()


async def test_prune_deletes_old_finished_jobs_in_batches(conn: asyncpg.Connection) -> None:
    await enqueue_many(conn, [NewJob("t") for _ in range(7)])
    worker = await _worker(conn)
    batch = await claims.claim_jobs(conn, ["default"], 6, worker, 30)
    ids = [j.id for j in batch]
    await claims.complete_jobs(conn, worker, ids[:4], [1] * 4, ["{}"] * 4)
    await claims.fail_jobs(conn, worker, ids[4:5], [1], ["x"], [None])
    await conn.execute(
        "UPDATE jobs SET finished_at = now() - interval '2 hours' WHERE id = ANY($1)", ids[1:5]
    )
    assert await maintenance.prune_finished_batch(conn, 3600, 3) == 3
    assert await maintenance.prune_finished_batch(conn, 3600, 3) == 1
    assert await maintenance.prune_finished_batch(conn, 3600, 3) == 0
    left = await conn.fetch("SELECT status, count(*) FROM jobs GROUP BY 1 ORDER BY 1")
    assert [(r["status"], r["count"]) for r in left] == [
        ("pending", 1),
        ("running", 1),
        ("completed", 1),
    ]


async def test_forget_dead_workers_keeps_those_holding_jobs(conn: asyncpg.Connection) -> None:
    await enqueue_many(conn, [NewJob("t")])
    holding, idle, alive = [await _worker(conn) for _ in range(3)]
    await claims.claim_jobs(conn, ["default"], 1, holding, 30)
    await conn.execute(
        "UPDATE workers SET lease_expires_at = now() - interval '1 hour' WHERE id = ANY($1)",
        [holding, idle],
    )
    assert await maintenance.forget_dead_workers(conn, 60) == 1
    left = {row["id"] for row in await conn.fetch("SELECT id FROM workers")}
    assert left == {holding, alive}
