"""The console's totals by job type and its worker names (console_stats.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from worker.db import sql_files
from worker.db.jobs import Executor

_sql = sql_files.statements("console_stats")

TOTALS_BOUND = 10_000  # rows each total reads at most


@dataclass(frozen=True)
class JobTypeTotals:
    job_type: str
    pending: int
    running: int
    completed: int  # in the last hour
    failed: int  # in the last hour
    run_seconds: float | None  # mean, over the last hour's finished jobs
    wait_seconds: float | None  # mean time from run_at to start
    capped: bool  # the hour had more finished jobs than were read


async def job_type_totals(executor: Executor) -> list[JobTypeTotals]:
    rows = await executor.fetch(_sql("job_type_totals"), TOTALS_BOUND)
    return [
        JobTypeTotals(
            r["job_type"],
            r["pending"],
            r["running"],
            r["completed"],
            r["failed"],
            r["run_seconds"],
            r["wait_seconds"],
            r["hour_capped"],
        )
        for r in rows
    ]


async def worker_names(executor: Executor, ids: Sequence[UUID | str]) -> dict[str, str]:
    """Worker id (text) to name, for those still registered."""
    if not ids:
        return {}
    rows = await executor.fetch(_sql("worker_names"), [str(i) for i in ids])
    return {row["id"]: row["name"] for row in rows}
