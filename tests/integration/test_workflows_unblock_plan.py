"""The unblocking never scans: when a job completes, its dependents are found through the edges'
primary key and updated through the jobs' primary key, however many other jobs and edges the
tables hold. The plans are read from PostgreSQL itself (auto_explain, nested statements), as
the acknowledgement runs them inside jobqueue_jobs_finished."""

from __future__ import annotations

import uuid

import asyncpg

from worker.db import claims, sql_files
from worker.db.jobs import NewJob, enqueue_many
from worker.db.workflows import WorkflowItem, enqueue_batch

OTHER_PARENTS = 100
DEPENDENTS_EACH = 100  # 10,000 edges that are not ours
OURS = 40


async def _fan_out(conn: asyncpg.Connection, parent: int, width: int) -> list[int]:
    async with conn.transaction():
        batch = await enqueue_batch(
            conn, [WorkflowItem(NewJob("noop"), [parent]) for _ in range(width)]
        )
    return [job_id for job_id, _status, _created in batch.jobs]


async def _plans_of(conn: asyncpg.Connection, statement: str, *args: object) -> list[str]:
    """Run `statement` with auto_explain on for it and what it calls; the plans it logged."""
    plans: list[str] = []

    def keep(_conn: object, message: asyncpg.PostgresLogMessage) -> None:
        if "Query Text" in str(message.message):
            plans.append(str(message.message))

    await conn.execute("LOAD 'auto_explain'")
    await conn.execute(
        "SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;"
        " SET client_min_messages = log"
    )
    conn.add_log_listener(keep)
    try:
        await conn.fetchval(statement, *args)
    finally:
        await conn.execute("RESET client_min_messages; SET auto_explain.log_min_duration = -1")
        conn.remove_log_listener(keep)
    return plans


async def test_a_completion_unblocks_its_dependents_by_index_only(conn: asyncpg.Connection) -> None:
    others = [job.id for job, _ in await enqueue_many(conn, [NewJob("noop")] * OTHER_PARENTS)]
    for other in others:
        await _fan_out(conn, other, DEPENDENTS_EACH)
    ((ours, _),) = await enqueue_many(conn, [NewJob("noop", priority=10)])
    dependents = await _fan_out(conn, ours.id, OURS)
    await conn.execute("ANALYZE jobs")
    await conn.execute("ANALYZE job_dependencies")

    worker = uuid.uuid4()
    (claimed,) = await claims.claim_jobs(conn, ["default"], 1, worker, 60)
    assert claimed.id == ours.id  # the priority puts ours first
    plans = await _plans_of(
        conn,
        sql_files.query("claims", "complete_jobs"),
        [ours.id],
        worker,
        f'{{"{ours.id}:{claimed.attempts}":null}}',
    )

    statuses = await conn.fetch(
        "SELECT status::text, count(*) FROM jobs WHERE id = ANY ($1) GROUP BY 1", dependents
    )
    assert [tuple(row) for row in statuses] == [("pending", OURS)]
    unblocking = [plan for plan in plans if "Update on jobs d" in plan]
    assert unblocking, "the unblocking statement was not logged:\n" + "\n".join(plans)
    for plan in unblocking:
        assert "Seq Scan" not in plan, plan
        assert "job_dependencies_pkey" in plan, plan
        assert "jobs_pkey" in plan, plan
    # and the other fan-outs were left alone
    blocked = await conn.fetchval("SELECT count(*) FROM jobs WHERE status::text = 'blocked'")
    assert blocked == OTHER_PARENTS * DEPENDENTS_EACH
