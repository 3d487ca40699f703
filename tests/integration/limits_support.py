"""What the flow-control tests share: setting a queue's limits, filling a queue with keyed jobs
in one statement, and reading the running counts in one snapshot."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from worker.db import claims


async def set_limits(
    conn: Any,
    queue: str,
    *,
    concurrency: int | None = None,
    key_concurrency: int | None = None,
    rate: tuple[int, float] | None = None,
) -> None:
    jobs, per_seconds = rate if rate is not None else (None, None)
    await conn.execute(
        """INSERT INTO queues (name, concurrency_limit, key_concurrency_limit,
                               rate_limit_jobs, rate_limit_per_seconds)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (name) DO UPDATE SET
               concurrency_limit = EXCLUDED.concurrency_limit,
               key_concurrency_limit = EXCLUDED.key_concurrency_limit,
               rate_limit_jobs = EXCLUDED.rate_limit_jobs,
               rate_limit_per_seconds = EXCLUDED.rate_limit_per_seconds""",
        queue,
        concurrency,
        key_concurrency,
        jobs,
        per_seconds,
    )


async def add_jobs(
    conn: Any,
    queue: str,
    keys: Sequence[str | None],
    *,
    job_type: str = "t",
    payload: str = "{}",
    priority: int = 0,
) -> list[int]:
    """One job per entry of `keys` (its concurrency key), in that claim order."""
    rows = await conn.fetch(
        """INSERT INTO jobs (job_type, queue_name, concurrency_key, payload, priority)
           SELECT $1, $2, k, $4::text::jsonb, $5 FROM unnest($3::text[]) WITH ORDINALITY AS t(k, o)
           ORDER BY o
           RETURNING id""",
        job_type,
        queue,
        list(keys),
        payload,
        priority,
    )
    return [row["id"] for row in rows]


async def new_worker(conn: Any, queues: Sequence[str] = ("default",)) -> uuid.UUID:
    worker_id = uuid.uuid4()
    await claims.register_worker(conn, worker_id, "w", list(queues), 4, 0, 30)
    return worker_id


RUNNING_COUNTS = """
SELECT queue_name, concurrency_key, GROUPING(concurrency_key) = 1 AS total, count(*) AS n
FROM jobs WHERE status = 'running'
GROUP BY GROUPING SETS ((queue_name), (queue_name, concurrency_key))
"""


async def running_counts(conn: Any) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Running jobs per queue and per (queue, key), from one statement's snapshot."""
    per_queue: dict[str, int] = {}
    per_key: dict[tuple[str, str], int] = {}
    for row in await conn.fetch(RUNNING_COUNTS):
        if row["total"]:
            per_queue[row["queue_name"]] = row["n"]
        elif row["concurrency_key"] is not None:
            per_key[(row["queue_name"], row["concurrency_key"])] = row["n"]
    return per_queue, per_key
