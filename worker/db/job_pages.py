"""A page of jobs (GET /jobs) whose size in memory has a bound: rows come through server-side
cursors, a few at a time, and the page ends once its payloads and results reach `max_bytes`
(at least one job), instead of a thousand whole rows of up to 256 KB payloads at once.

The statements are list_jobs's own (worker.db.inspect.list_statements), each newest first;
their rows are merged by id as they come, so an early end drops no job from the next page.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from worker.db.inspect import list_statements
from worker.db.jobs import Job

PREFETCH = 32  # rows each cursor holds at once: 8 MiB at most of 256 KiB payloads


def row_bytes(row: asyncpg.Record) -> int:
    """What a row's payload and result weigh as JSON: the part of a job that can be large."""
    size = 0
    for column in ("payload", "result"):
        value = row[column]
        if value is not None:
            size += len(value) if isinstance(value, str) else len(json.dumps(value))
    return size


async def list_jobs_bounded(
    conn: asyncpg.Connection,
    *,
    statuses: Sequence[str] | None,
    queue_name: str | None,
    job_type: str | None,
    before_id: int | None,
    limit: int,
    max_bytes: int,
) -> tuple[list[Job], bool]:
    """The page, and whether it ended at `max_bytes` (more jobs may follow the last one)."""
    statements = list_statements(statuses, queue_name, job_type, before_id, limit)
    page: list[Job] = []
    async with conn.transaction(readonly=True):  # cursors live in a transaction
        streams: list[AsyncIterator[Any]] = [
            conn.cursor(sql, *args, prefetch=PREFETCH).__aiter__() for sql, args in statements
        ]
        heads: list[asyncpg.Record | None] = [await anext(stream, None) for stream in streams]
        used = 0
        while len(page) < limit:
            live = {i: head for i, head in enumerate(heads) if head is not None}
            if not live:
                break
            newest = max(live, key=lambda i: live[i]["id"])
            row = live[newest]
            used += row_bytes(row)
            if page and used > max_bytes:
                return page, True
            page.append(Job.from_record(row))
            heads[newest] = await anext(streams[newest], None)
    return page, False
