"""Writing handlers' progress: one fenced statement for every job that reported since the
last write."""

from __future__ import annotations

import json
from collections.abc import Mapping
from uuid import UUID

from worker.db import sql_files
from worker.db.claims import Conn, row_count

_sql = sql_files.statements("progress")


async def write_progress(
    conn: Conn, worker_id: UUID, reports: Mapping[tuple[int, int], tuple[float, str | None]]
) -> int:
    """`reports` maps (job id, attempts) to (fraction, message); returns the rows written
    (a job that finished or was taken over meanwhile is left alone)."""
    by_token = json.dumps({f"{i}:{a}": list(value) for (i, a), value in reports.items()})
    ids = [job_id for job_id, _ in reports]
    return row_count(await conn.execute(_sql("jobs_update_progress"), ids, worker_id, by_token))
