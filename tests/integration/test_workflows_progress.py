"""Progress on real PostgreSQL: ctx.progress is stored at most once per second per job, shown
by GET /jobs/{id}, clamped into 0..1 with a warning, and never fails the job."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import asyncpg
import pytest

from tests.integration.api_support import JOBS, api_client, api_settings
from tests.integration.queue_support import eventually, running_worker
from worker.db import claims
from worker.db.connection import create_pool
from worker.db.jobs import NewJob, enqueue
from worker.handlers.base import HandlerRegistry, JobContext
from worker.runtime.progress import ProgressWriter


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


async def test_a_finishing_jobs_last_report_is_not_overtaken(pg_dsn: str) -> None:
    """The writer took the last report and is on its way to store it (here: waiting for the
    pool's one connection) when the job finishes: the finish waits for that write, so the
    acknowledgement that follows cannot land first and fence it out. Once, a completed job
    showed an older fraction than the handler's last report."""
    conn = await asyncpg.connect(pg_dsn)
    pool = await create_pool(pg_dsn, min_size=1, max_size=1)
    writer_task = None
    try:
        job, _ = await enqueue(conn, NewJob("steps"))
        worker = uuid.uuid4()
        (claimed,) = await claims.claim_jobs(conn, ["default"], 1, worker, 60)
        writer = ProgressWriter(pool, worker, interval=0.01)
        writer_task = asyncio.create_task(writer.run())

        async def stored() -> Any:
            return await conn.fetchval("SELECT progress FROM jobs WHERE id = $1", job.id)

        writer.report(job.id, claimed.attempts, 0.5, "half")
        await eventually(lambda: _equals(stored(), 0.5), what="the first report")
        held = await pool.acquire()  # the writer's next write must wait for the connection
        try:
            writer.report(job.id, claimed.attempts, 1.0, "done")
            await asyncio.sleep(0.1)  # it has taken the report and waits
            assert writer.has_pending(job.id, claimed.attempts)
            flush = asyncio.create_task(writer.flush_job(job.id, claimed.attempts))
            await asyncio.sleep(0.1)
            assert not flush.done()  # the write on its way goes first
        finally:
            await pool.release(held)
        await flush
        assert await stored() == 1.0  # stored before the job's acknowledgement is sent
    finally:
        if writer_task is not None:
            writer_task.cancel()
        await pool.close()
        await conn.close()


async def _equals(value: Any, expected: float) -> bool:
    return bool(await value == expected)
