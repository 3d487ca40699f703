"""Retry or cancel every job that matches a filter, in batches of short transactions, so that a
million matching rows never make one huge transaction. A call stops after its time budget
and says where it got to (`after_id`); calling again with it goes on from there, so a client
never waits past its own timeout and an interrupted operation loses nothing."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from worker.db import sql_files
from worker.db.jobs import Executor

_sql = sql_files.statements("bulk")

Action = Literal["retry", "cancel"]
# The statuses each action moves jobs out of; a filter's status must be one of them.
FROM_STATUSES: dict[Action, tuple[str, ...]] = {
    "retry": ("failed", "cancelled"),
    "cancel": ("pending", "blocked", "running"),
}


@dataclass(frozen=True)
class JobFilter:
    status: str | None = None
    queue_name: str | None = None
    job_type: str | None = None
    created_before: datetime | None = None

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.status, self.queue_name, self.job_type,
                                       self.created_before))  # fmt: skip


@dataclass(frozen=True)
class BulkResult:
    matched: int  # jobs changed
    done: bool
    after_id: int  # pass back to go on; every job up to it was looked at
    up_to_id: int


async def bulk_change(
    pool: Executor,
    action: Action,
    where: JobFilter,
    *,
    batch_size: int,
    time_budget: float,
    after_id: int = 0,
    up_to_id: int | None = None,
) -> BulkResult:
    """Change matching jobs with ids in (after_id, up_to_id] (default: the largest id now)."""
    if where.status is not None and where.status not in FROM_STATUSES[action]:
        raise ValueError(f"{action} applies to {' or '.join(FROM_STATUSES[action])} jobs")
    statuses = [where.status] if where.status else list(FROM_STATUSES[action])
    deadline = time.monotonic() + time_budget
    if up_to_id is None:
        up_to_id = int(await pool.fetchval(_sql("jobs_max_id")))
    matched = 0
    statement = _sql(f"jobs_{action}_batch")
    while True:
        args = (statuses, where.queue_name, where.job_type, where.created_before)
        try:
            row = await pool.fetchrow(statement, *args, after_id, up_to_id, batch_size)
        except asyncpg.UniqueViolationError:
            # an enqueue took a unique_key between our check and our update: the next try
            # sees that job and leaves the retried one alone
            continue
        assert row is not None
        matched += row["changed"]
        if row["looked"] < batch_size:
            return BulkResult(matched, True, up_to_id, up_to_id)
        after_id = row["last_id"]
        if time.monotonic() >= deadline:
            return BulkResult(matched, False, after_id, up_to_id)
        await asyncio.sleep(0)
