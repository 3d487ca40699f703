"""Retention never deletes the jobs of a batch that is still open (a real worker process
prunes, on real PostgreSQL): the batch's callback counts its jobs when the last one finishes,
and a pruned one was missing from its counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg

from tests.integration.api_support import JOBS, api_client, api_settings
from tests.integration.queue_support import eventually


async def status_of(conn: asyncpg.Connection, job_id: int) -> str | None:
    value = await conn.fetchval("SELECT status::text FROM jobs WHERE id = $1", job_id)
    return None if value is None else str(value)


async def test_an_open_batchs_old_jobs_stay(
    pg_dsn: str, conn: asyncpg.Connection, workers: Any, tmp_path: Path
) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        made = await client.post(
            f"{JOBS}/batch",
            json={
                "jobs": [
                    {"job_type": "noop"},
                    {"job_type": "noop", "delay_seconds": 3600},  # keeps the batch open
                ],
                "on_complete": {"job_type": "noop", "queue_name": "callbacks"},
            },
        )
        assert made.status_code == 201, made.text
        first, last = (job["id"] for job in made.json()["jobs"])
        control = (await client.post(JOBS, json={"job_type": "noop"})).json()["id"]
    workers(
        pg_dsn,
        WORKER_QUEUES="default,callbacks",
        JOBQUEUE_RETENTION_SECONDS="60",
        JOBQUEUE_RETENTION_INTERVAL="0.2",
    )

    async def ran() -> bool:
        return await status_of(conn, first) == await status_of(conn, control) == "completed"

    await eventually(ran, within=60, what="the first job and the control to complete")
    # both finished a day ago: past the retention
    await conn.execute(
        "UPDATE jobs SET finished_at = now() - interval '1 day' WHERE id = ANY ($1::bigint[])",
        [first, control],
    )

    async def pruned() -> bool:
        return await status_of(conn, control) is None

    await eventually(pruned, within=60, what="retention to prune the job outside the batch")
    assert await status_of(conn, first) == "completed", "the open batch's job was pruned"

    await conn.execute("UPDATE jobs SET run_at = now() WHERE id = $1", last)

    async def called_back() -> Any:
        return await conn.fetchrow(
            "SELECT status::text AS status, payload::text AS payload FROM jobs "
            "WHERE queue_name = 'callbacks'"
        )

    callback = await eventually(called_back, within=60, what="the batch's callback")
    assert json.loads(callback["payload"])["counts"] == {"completed": 2}
