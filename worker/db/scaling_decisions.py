"""Writes and prunes the scaling_decisions table (the controller's history for the console)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from worker.db import sql_files

_sql = sql_files.statements("scaling_decisions")


async def insert_scaling_decisions(
    conn: asyncpg.Connection,
    namespace: str,
    deployment: str,
    from_replicas: int,
    to_replicas: int,
    reason: str,
    detail: Mapping[str, Any],
    wait_seconds: float,
) -> None:
    await conn.execute(
        _sql("insert_scaling_decisions"),
        namespace,
        deployment,
        from_replicas,
        to_replicas,
        reason,
        dict(detail),
        timeout=wait_seconds,
    )


async def delete_scaling_decisions_older(
    conn: asyncpg.Connection, keep_seconds: float, wait_seconds: float
) -> int:
    """Deletes decisions older than `keep_seconds`; returns how many."""
    status = await conn.execute(
        _sql("delete_scaling_decisions_older"), keep_seconds, timeout=wait_seconds
    )
    return int(status.split()[-1])
