"""The controller's capacity reads (through controller.capacity_guard): queue limits, the
connection budget, and finished jobs' run times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from worker.db import sql_files

_sql = sql_files.statements("capacity")

FINISHED_ROWS_PER_READ = 5000


async def select_queues_limits(
    conn: asyncpg.Connection, queues: Sequence[str], wait_seconds: float
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_sql("select_queues_limits"), list(queues), timeout=wait_seconds))


def pod_name_pattern(deployment: str) -> str:
    """The LIKE pattern of a Deployment's pods' names, `<deployment>-...`, which its workers
    take as their own names."""
    escaped = deployment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}-%"


def workers_application_name_pattern(deployment: str) -> str:
    """The LIKE pattern of the application_name a Deployment's workers connect with: the
    worker names itself after its pod, and a Deployment's pods are named `<deployment>-...`."""
    return f"jobqueue-worker {pod_name_pattern(deployment)}"


async def select_connections_budget(
    conn: asyncpg.Connection, deployment: str, wait_seconds: float
) -> asyncpg.Record:
    """max_connections, superuser_reserved, reserved and not_ours; raises asyncpg's
    InsufficientPrivilegeError where the role may not read pg_stat_activity."""
    pattern = workers_application_name_pattern(deployment)
    rows = await conn.fetch(_sql("select_connections_budget"), pattern, timeout=wait_seconds)
    return rows[0]


async def sum_jobs_finished(
    conn: asyncpg.Connection,
    queues: Sequence[str],
    since: datetime | None,
    first_seconds: float,
    wait_seconds: float,
) -> asyncpg.Record:
    """`jobs`, `run_seconds` and `last_finished_at` of the jobs finished after `since` (or in
    the last `first_seconds` when `since` is None), oldest first, at most one read's worth."""
    rows = await conn.fetch(
        _sql("sum_jobs_finished"),
        list(queues),
        since,
        first_seconds,
        FINISHED_ROWS_PER_READ,
        timeout=wait_seconds,
    )
    return rows[0]
