"""Listing by status through migration 0008's index: pages merge every queue's newest ids,
in id order, with nothing missed or repeated across pages."""

from __future__ import annotations

import asyncpg

from worker.db import inspect
from worker.db.jobs import NewJob, enqueue_many


async def test_status_pages_merge_queues_in_id_order(conn: asyncpg.Connection) -> None:
    jobs = [NewJob("noop", {"n": i}, queue_name=f"q{i % 4}") for i in range(40)]
    created = [job.id for job, _ in await enqueue_many(conn, jobs)]
    cancelled = created[::3]
    await conn.execute(
        "UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = ANY($1)",
        cancelled,
    )
    seen: list[int] = []
    before = None
    while True:
        page = await inspect.list_jobs(conn, statuses=["cancelled"], before_id=before, limit=5)
        seen += [job.id for job in page]
        if len(page) < 5:
            break
        before = page[-1].id
    assert seen == sorted(cancelled, reverse=True)

    in_q1 = await inspect.list_jobs(conn, statuses=["cancelled"], queue_name="q1", limit=50)
    assert [j.id for j in in_q1] == [i for i in seen if (i - created[0]) % 4 == 1]

    both = await inspect.list_jobs(conn, statuses=["pending", "cancelled"], limit=7)
    assert [j.id for j in both] == sorted(created, reverse=True)[:7]

    # each status through its own index: running, failed, and pending by the primary key
    running, failed = created[1:3], created[4:6]
    await conn.execute("UPDATE jobs SET status = 'running' WHERE id = ANY($1)", running)
    await conn.execute("UPDATE jobs SET status = 'failed' WHERE id = ANY($1)", failed)
    mixed = await inspect.list_jobs(conn, statuses=["failed", "running"], limit=10)
    assert [j.id for j in mixed] == sorted(running + failed, reverse=True)
