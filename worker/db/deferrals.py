"""The worker's write for jobs it has no handler for (deferrals.sql): back to pending, no try
used, with a wait that grows with the job's age, and last_error saying why."""

from __future__ import annotations

import json
from collections.abc import Sequence
from uuid import UUID

from worker.db import sql_files
from worker.db.claims import Conn, row_count

_sql = sql_files.statements("deferrals")

MIN_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 60.0


async def defer_jobs(
    conn: Conn,
    worker_id: UUID,
    ids: Sequence[int],
    attempts: Sequence[int],
    reasons: Sequence[str],
) -> int:
    """Returns how many were still this worker's."""
    by_token = json.dumps({f"{i}:{a}": r for i, a, r in zip(ids, attempts, reasons, strict=True)})
    status = await conn.execute(
        _sql("defer_jobs"), list(ids), worker_id, by_token, MIN_DELAY_SECONDS, MAX_DELAY_SECONDS
    )
    return row_count(status)
