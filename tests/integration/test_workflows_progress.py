"""Progress on real PostgreSQL: ctx.progress is stored at most once per second per job, shown
by GET /jobs/{id}, clamped into 0..1 with a warning, and never fails the job."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
import pytest

from tests.integration.api_support import JOBS, api_client, api_settings
from tests.integration.queue_support import eventually, running_worker
from worker.db.jobs import NewJob, enqueue
from worker.handlers.base import HandlerRegistry, JobContext


async def test_progress_is_throttled_shown_and_clamped(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    registry = HandlerRegistry()
    release = asyncio.Event()
    reports = 0

    @registry.register("steps")
    async def steps(payload: dict[str, Any], ctx: JobContext) -> Any:
        nonlocal reports
        for step in range(2000):
            ctx.progress(step / 4000, f"step {step}")
            reports += 1
            if step % 100 == 0:
                await asyncio.sleep(0.01)
        ctx.progress(7.5, "over the top")  # clamped to 1.0, with a warning
        await release.wait()
        return "done"

    caplog.set_level(logging.WARNING, logger="worker.runtime.progress")
    conn = await asyncpg.connect(pg_dsn)
    try:
        job, _ = await enqueue(conn, NewJob("steps"))
        async with running_worker(pg_dsn, registry) as worker:
            started = time.monotonic()

            async def clamped() -> bool:
                value = await conn.fetchval("SELECT progress FROM jobs WHERE id = $1", job.id)
                return value == 1.0

            await eventually(clamped, what="the clamped progress")
            elapsed = time.monotonic() - started
            # thousands of reports, at most one write per second (plus the first)
            assert reports == 2000
            assert worker.progress.writes <= elapsed + 2
            async with api_client(api_settings(pg_dsn, allow_unknown_job_types=True)) as client:
                shown = (await client.get(f"{JOBS}/{job.id}")).json()
            assert shown["progress"] == 1.0
            assert shown["progress_message"] == "over the top"
            assert shown["status"] == "running"
            release.set()
            await eventually(
                lambda: conn.fetchval(
                    "SELECT status::text = 'completed' FROM jobs WHERE id = $1", job.id
                ),
                what="completion",
            )
        assert any("outside 0..1" in r.getMessage() for r in caplog.records)
    finally:
        await conn.close()


async def test_a_report_that_is_not_a_number_is_dropped_not_fatal(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    registry = HandlerRegistry()

    @registry.register("odd")
    async def odd(payload: dict[str, Any], ctx: JobContext) -> Any:
        ctx.progress(float("nan"), "nan")
        ctx.progress("half", "not a number")  # type: ignore[arg-type]
        return "fine"

    job, _ = await enqueue(conn, NewJob("odd"))
    async with running_worker(pg_dsn, registry):
        await eventually(
            lambda: conn.fetchval(
                "SELECT status::text = 'completed' FROM jobs WHERE id = $1", job.id
            ),
            what="completion",
        )
    assert await conn.fetchval("SELECT progress FROM jobs WHERE id = $1", job.id) is None
