"""Cold starts (worker/db/sql/startups.sql): the worker writes its start's phases once; the
controller reads those of the first worker to claim after a scale-up from zero."""

from __future__ import annotations

import json
from collections.abc import Mapping
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from worker.db import sql_files

Conn = asyncpg.Connection | PoolConnectionProxy
_sql = sql_files.statements("startups")

# The channel update_worker_startup notifies, with the worker's name, once it has claimed.
WORKER_STARTED_CHANNEL = "jobqueue_worker_started"


async def update_worker_startup(conn: Conn, worker_id: UUID, phases: Mapping[str, float]) -> None:
    """Over a connection of ours (worker.db.connection), whose jsonb codec encodes the dict."""
    await conn.execute(_sql("update_worker_startup"), worker_id, dict(phases))


async def select_first_startup(
    conn: asyncpg.Connection, name_pattern: str, registered_after: float, wait_seconds: float
) -> tuple[str, dict[str, float]] | None:
    """The name and phases of the first worker (by its first claim) whose name matches and that
    registered after `registered_after`; None while none has claimed."""
    row = await conn.fetchrow(
        _sql("select_first_startup"), name_pattern, registered_after, timeout=wait_seconds
    )
    if row is None:
        return None
    phases = row["startup"]
    return row["name"], json.loads(phases) if isinstance(phases, str) else dict(phases)
