"""Each attempt's story (migration 0010): the error and traceback of every failed attempt,
and the lines its handler logged through ctx.logger. Written by the runtime in the
transaction of the attempt's acknowledgement (worker/runtime/acks.py), read by GET /jobs/{id},
`jobqueue jobs get` and the console's job page."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from worker.db import sql_files
from worker.db.claims import Conn

if TYPE_CHECKING:
    # The runtime writes stories on every acknowledgement; the jobs and workflows modules
    # (and the job checks' pydantic models under them) are for job_detail, the API's and
    # the CLI's read, so they stay off a worker's cold start (issue 27).
    from worker.db.jobs import Executor, Job

_sql = sql_files.statements("attempts")

# Bytes of log messages kept per job, over all its attempts (River's riverlog keeps a like
# amount); past it, one line per attempt says how many were not kept.
JOB_LOG_CAP_BYTES = 64 * 1024


@dataclass(slots=True)
class AttemptStory:
    """What one attempt leaves besides its outcome: its error and traceback when it failed,
    and its handler's log lines as (unix time, level, message)."""

    error: str | None = None
    traceback: str | None = None
    lines: list[tuple[float, str, str]] = field(default_factory=list)
    dropped: int = 0  # lines the runtime did not keep, past the cap in memory

    def __bool__(self) -> bool:
        return bool(self.error or self.lines or self.dropped)


async def record_attempts(
    conn: Conn, worker_id: UUID, stories: Sequence[tuple[int, int, AttemptStory]]
) -> None:
    """Insert the stories of (job id, attempt) still running under `worker_id`; call it in the
    acknowledgement's transaction, before the acknowledgement (attempts.sql says why)."""
    ids = [job_id for job_id, _, _ in stories]
    errors = [[i, a, s.error, s.traceback] for i, a, s in stories if s.error is not None]
    logs = [[i, a, s.dropped, s.lines] for i, a, s in stories if s.lines or s.dropped]
    if errors:
        await conn.execute(_sql("insert_job_errors"), ids, worker_id, json.dumps(errors))
    if logs:
        await conn.execute(
            _sql("insert_job_logs"), ids, worker_id, json.dumps(logs), JOB_LOG_CAP_BYTES
        )


def _iso(value: datetime) -> str:
    return value.isoformat()


async def job_errors(conn: Executor, job_id: int) -> list[dict[str, Any]]:
    """DESIGN.md's `errors`: {attempt, at, error, traceback}, newest first."""
    rows = await conn.fetch(_sql("job_errors_of"), job_id)
    return [
        {"attempt": r["attempt"], "at": _iso(r["at"]), "error": r["error"], "traceback": r[3]}
        for r in rows
    ]


async def job_logs(conn: Executor, job_id: int) -> list[dict[str, Any]]:
    """DESIGN.md's `logs`: {attempt, at, level, message}, in the order they were logged."""
    rows = await conn.fetch(_sql("job_logs_of"), job_id)
    return [
        {"attempt": r["attempt"], "at": _iso(r["at"]), "level": r["level"], "message": r[3]}
        for r in rows
    ]


async def prune_attempt_history(conn: Conn, older_than_seconds: float, batch: int) -> int | None:
    """Up to `batch` rows of each table older than the retention; the larger count."""
    return int(await conn.fetchval(_sql("prune_attempt_history"), older_than_seconds, batch))


async def job_detail(conn: Executor, job: Job) -> dict[str, Any]:
    """GET /jobs/{id}'s answer: the job's fields, its dependencies, `errors` and `logs`."""
    from worker.db.workflows import dependencies_of

    if job.dependencies_left is not None:
        job.depends_on = await dependencies_of(conn, job.id)
    detail = job.to_dict()
    detail["errors"] = await job_errors(conn, job.id)
    detail["logs"] = await job_logs(conn, job.id)
    return detail
