"""Job dependencies against real PostgreSQL: blocked until the last dependency completes (in the
same transaction), cancelled in cascade when one fails or is cancelled, run_on_failure."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest

from tests.integration.queue_support import eventually, running_worker
from worker.db.jobs import NewJob, cancel_job, enqueue, get_job
from worker.db.workflows import MissingDependency, WorkflowItem, enqueue_batch, enqueue_job
from worker.handlers.base import HandlerRegistry, JobContext, PermanentError

TERMINAL = ("completed", "failed", "cancelled")


def _registry() -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.register("echo")
    async def echo(payload: dict[str, Any], ctx: JobContext) -> Any:
        return {"job": ctx.job_id}

    @registry.register("boom")
    async def boom(payload: dict[str, Any], ctx: JobContext) -> Any:
        raise PermanentError("boom")

    return registry


async def _status(conn: asyncpg.Connection, job_id: int) -> str:
    return str(await conn.fetchval("SELECT status::text FROM jobs WHERE id = $1", job_id))


async def _all_terminal(conn: asyncpg.Connection, ids: list[int]) -> bool:
    statuses = [await _status(conn, i) for i in ids]
    return all(s in TERMINAL for s in statuses)


async def test_a_dependent_waits_blocked_then_runs_after(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        first, _ = await enqueue(conn, NewJob("echo"))
        second = await enqueue_job(conn, NewJob("echo"), depends_on=[first.id])
        third = await enqueue_job(conn, NewJob("echo"), depends_on=[first.id, second])
        assert await _status(conn, second) == "blocked"
        assert await _status(conn, third) == "blocked"
        async with running_worker(pg_dsn, _registry()):
            await eventually(lambda: _all_terminal(conn, [first.id, second, third]), what="chain")
        rows = await conn.fetch(
            "SELECT id, status::text, started_at, finished_at FROM jobs ORDER BY id"
        )
        assert [r["status"] for r in rows] == ["completed"] * 3
        # each started only after what it waits for had finished
        assert rows[1]["started_at"] >= rows[0]["finished_at"]
        assert rows[2]["started_at"] >= rows[1]["finished_at"]
        assert await conn.fetchval("SELECT dependencies_left FROM jobs WHERE id = $1", third) == 0
    finally:
        await conn.close()


async def test_a_failure_cancels_dependents_recursively_unless_run_on_failure(
    pg_dsn: str,
    conn: asyncpg.Connection,
) -> None:
    root, _ = await enqueue(conn, NewJob("boom", max_tries=1))
    child = await enqueue_job(conn, NewJob("echo"), depends_on=[root.id])
    grandchild = await enqueue_job(conn, NewJob("echo"), depends_on=[child])
    cleanup = await enqueue_job(conn, NewJob("echo"), depends_on=[root.id], run_on_failure=True)
    async with running_worker(pg_dsn, _registry()):
        ids = [root.id, child, grandchild, cleanup]
        await eventually(lambda: _all_terminal(conn, ids), what="cascade")
    assert await _status(conn, root.id) == "failed"
    assert await _status(conn, cleanup) == "completed"
    child_job = await get_job(conn, child)
    grandchild_job = await get_job(conn, grandchild)
    assert child_job is not None and grandchild_job is not None
    assert child_job.status == "cancelled"
    assert child_job.last_error == f"cancelled: its dependency job {root.id} failed"
    assert grandchild_job.status == "cancelled"
    assert grandchild_job.last_error == f"cancelled: its dependency job {child} cancelled"
    assert child_job.started_at is None and grandchild_job.finished_at is not None


async def test_cancelling_a_job_cancels_its_blocked_dependents(conn: asyncpg.Connection) -> None:
    root, _ = await enqueue(conn, NewJob("echo", delay_seconds=3600))
    child = await enqueue_job(conn, NewJob("echo"), depends_on=[root.id])
    await cancel_job(conn, root.id)
    assert await _status(conn, child) == "cancelled"
    # a blocked job can be cancelled itself
    other = await enqueue_job(conn, NewJob("echo"), depends_on=[child])
    assert await _status(conn, other) == "cancelled"  # its dependency was cancelled already
    root2, _ = await enqueue(conn, NewJob("echo", delay_seconds=3600))
    blocked = await enqueue_job(conn, NewJob("echo"), depends_on=[root2.id])
    assert (await cancel_job(conn, blocked)).status == "cancelled"


async def test_dependencies_already_finished_count_at_enqueue(conn: asyncpg.Connection) -> None:
    done, _ = await enqueue(conn, NewJob("echo"))
    failed, _ = await enqueue(conn, NewJob("echo"))
    await conn.execute("UPDATE jobs SET status = 'completed' WHERE id = $1", done.id)
    await conn.execute("UPDATE jobs SET status = 'failed' WHERE id = $1", failed.id)
    assert await _status(conn, await enqueue_job(conn, NewJob("echo"), [done.id])) == "pending"
    cancelled = await enqueue_job(conn, NewJob("echo"), [done.id, failed.id])
    job = await get_job(conn, cancelled)
    assert job is not None and job.status == "cancelled"
    assert job.last_error == f"cancelled: its dependency job {failed.id} failed"
    runs = await enqueue_job(conn, NewJob("echo"), [failed.id], run_on_failure=True)
    assert await _status(conn, runs) == "pending"


async def test_a_missing_dependency_is_refused_and_nothing_is_written(
    conn: asyncpg.Connection,
) -> None:
    real, _ = await enqueue(conn, NewJob("echo"))
    with pytest.raises(MissingDependency) as caught:
        await enqueue_job(conn, NewJob("echo"), depends_on=[real.id, 999_999])
    assert caught.value.id == 999_999
    assert await conn.fetchval("SELECT count(*) FROM jobs") == 1


async def test_fan_in_unblocks_once_the_last_of_many_completes(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    async with conn.transaction():
        items = [WorkflowItem(NewJob("echo")) for _ in range(200)]
        items.append(WorkflowItem(NewJob("echo"), depends_on_items=list(range(200))))
        batch = await enqueue_batch(conn, items)
    last = batch.jobs[-1][0]
    assert batch.jobs[-1][1] == "blocked"
    async with running_worker(pg_dsn, _registry(), max_concurrent_jobs=8):
        await eventually(lambda: _all_terminal(conn, [last]), what="fan-in")
    assert await _status(conn, last) == "completed"
    latest = await conn.fetchval("SELECT max(finished_at) FROM jobs WHERE id <> $1", last)
    assert await conn.fetchval("SELECT started_at FROM jobs WHERE id = $1", last) >= latest


async def test_a_dependency_rescued_to_failed_cancels_its_dependents(pg_dsn: str) -> None:
    import uuid

    from worker.db import claims, maintenance

    conn = await asyncpg.connect(pg_dsn)
    try:
        root, _ = await enqueue(conn, NewJob("echo", max_tries=1))
        child = await enqueue_job(conn, NewJob("echo"), depends_on=[root.id])
        # claimed by a worker that then vanished: its lease runs out with no tries left
        (claimed,) = await claims.claim_jobs(conn, ["default"], 1, uuid.uuid4(), 0.01)
        assert claimed.id == root.id

        async def rescued() -> bool:
            result = await maintenance.rescue_expired_leases(conn)
            return result is not None and result.failed == 1

        await eventually(rescued, what="the lease rescue")
        job = await get_job(conn, child)
        assert job is not None and job.status == "cancelled"
        assert job.last_error == f"cancelled: its dependency job {root.id} failed"
    finally:
        await conn.close()


async def test_two_workers_finish_a_random_graph_in_order(pg_dsn: str) -> None:
    """Dependents share parents across acknowledgements of two workers: every job runs once,
    after all it waits for, and no acknowledgement deadlocks."""
    import random

    shuffle = random.Random(7)
    items = [WorkflowItem(NewJob("echo")) for _ in range(150)]
    for index in range(150, 230):
        parents = shuffle.sample(range(index), k=min(index, 6))
        items.append(WorkflowItem(NewJob("echo"), depends_on_items=parents))
    # When each handler ran, on one clock: a dependent is claimed only after its dependency's
    # acknowledgement committed, which is after that handler returned. (The rows' started_at
    # and finished_at are each their transaction's start time, so they cannot order the two.)
    began: dict[int, float] = {}
    ended: dict[int, float] = {}
    timed = HandlerRegistry()

    @timed.register("echo")
    async def echo(payload: dict[str, Any], ctx: JobContext) -> Any:
        began[ctx.job_id] = time.monotonic()
        await asyncio.sleep(0)
        ended[ctx.job_id] = time.monotonic()
        return {"job": ctx.job_id}

    conn = await asyncpg.connect(pg_dsn)
    try:
        async with conn.transaction():
            batch = await enqueue_batch(conn, items)
        ids = [job_id for job_id, _, _ in batch.jobs]
        async with (
            running_worker(pg_dsn, timed, worker_name="a", max_concurrent_jobs=8),
            running_worker(pg_dsn, timed, worker_name="b", max_concurrent_jobs=8),
        ):
            await eventually(lambda: _all_terminal(conn, ids), within=120, what="the graph")
        rows = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id, status::text, attempts, started_at, finished_at FROM jobs"
            )
        }
        assert {r["status"] for r in rows.values()} == {"completed"}
        assert {r["attempts"] for r in rows.values()} == {1}
        for item, job_id in zip(items, ids, strict=True):
            for parent in item.depends_on_items:
                assert began[job_id] >= ended[ids[parent]], (job_id, ids[parent])
    finally:
        await conn.close()


async def test_pruning_a_finished_dependent_removes_its_edges(conn: asyncpg.Connection) -> None:
    from worker.db import maintenance

    root, _ = await enqueue(conn, NewJob("echo"))
    child = await enqueue_job(conn, NewJob("echo"), depends_on=[root.id])
    await conn.execute(
        "UPDATE jobs SET status = 'completed', finished_at = now() - interval '2 hours'"
    )
    assert await maintenance.prune_finished_batch(conn, 3600, 10) == 2
    assert await conn.fetchval("SELECT count(*) FROM job_dependencies") == 0
    assert await get_job(conn, child) is None
