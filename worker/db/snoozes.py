"""The worker's write for snoozed jobs (worker.handlers.snooze): fenced and batched like
complete_jobs and fail_jobs in worker.db.claims."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from worker.db import sql_files
from worker.db.claims import Conn, row_count

_sql = sql_files.statements("snoozes")


async def snooze_jobs(
    conn: Conn,
    worker_id: UUID,
    ids: Sequence[int],
    attempts: Sequence[int],
    delays: Sequence[float],
    max_snoozes: int,
) -> int:
    """Send jobs back to pending after their delay; returns how many were still ours."""
    by_token = (
        "{"
        + ",".join(f'"{i}:{a}":{d!r}' for i, a, d in zip(ids, attempts, delays, strict=True))
        + "}"
    )
    status = await conn.execute(_sql("snooze_jobs"), list(ids), worker_id, by_token, max_snoozes)
    return row_count(status)
