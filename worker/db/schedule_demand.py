"""The autoscalers' count of due schedules (schedule_demand.sql), read beside the depth."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from worker.db import sql_files

_sql = sql_files.statements("schedule_demand")


async def count_due_schedules(
    conn: asyncpg.Connection, queues: Sequence[str], cap: int, wait_seconds: float
) -> int:
    return int(
        await conn.fetchval(_sql("count_due_schedules"), list(queues), cap, timeout=wait_seconds)
    )
