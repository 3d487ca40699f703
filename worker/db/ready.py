"""The ready ring's maintenance (migration 0017, docs/storage.md): turned by every worker's
`ready ring` service, one caller at a time."""

from __future__ import annotations

from worker.db import sql_files
from worker.db.claims import Conn

_sql = sql_files.statements("ready")


async def turn(conn: Conn, every_ms: int, move: int) -> int | None:
    """Turn the ring if its slot is `every_ms` old, tidy its oldest slot (up to `move`
    entries), and truncate one empty slot: returns that slot, -1 for none, None when another
    worker was turning it."""
    slot = await conn.fetchval(_sql("job_ready_turn"), every_ms, move)
    return None if slot is None else int(slot)
