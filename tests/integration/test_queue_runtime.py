"""The worker runtime in-process against real PostgreSQL: outcomes, timeouts, cancel, drain,
connections, wake-ups, health and metrics."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from tests.integration.queue_support import eventually, fetchval, running_worker
from worker.db import claims
from worker.db.connection import connect
from worker.db.jobs import NewJob, cancel_job, enqueue, enqueue_many, get_job
from worker.handlers.base import HandlerRegistry, JobContext, PermanentError
from worker.runtime.main import WorkerProcess


def _registry() -> tuple[HandlerRegistry, dict[str, Any]]:
    reg = HandlerRegistry()
    seen: dict[str, Any] = {"flaky": 0, "started": asyncio.Event(), "cancelled": 0}

    @reg.register("echo")
    async def echo(payload: dict[str, Any], ctx: JobContext) -> Any:
        return {"payload": payload, "attempt": ctx.attempt, "job": ctx.job_id}

    @reg.register("flaky")
    async def flaky(payload: dict[str, Any], ctx: JobContext) -> Any:
        seen["flaky"] += 1
        raise ValueError(f"flaky failure {ctx.attempt}")

    @reg.register("permanent")
    async def permanent(payload: dict[str, Any], ctx: JobContext) -> Any:
        raise PermanentError("the payload names no recipient")

    @reg.register("not_json")
    async def not_json(payload: dict[str, Any], ctx: JobContext) -> Any:
        return {"when": object()}

    @reg.register("sleep")
    async def sleep(payload: dict[str, Any], ctx: JobContext) -> Any:
        seen["started"].set()
        try:
            await asyncio.sleep(payload["seconds"])
        except asyncio.CancelledError:
            seen["cancelled"] += 1
            raise
        return {"slept": payload["seconds"]}

    @reg.register("slow_by_spec", timeout_seconds=0.2)
    async def slow_by_spec(payload: dict[str, Any], ctx: JobContext) -> Any:
        await asyncio.sleep(30)

    return reg, seen


@asynccontextmanager
async def _worker(
    dsn: str, **overrides: Any
) -> AsyncIterator[tuple[WorkerProcess, dict[str, Any]]]:
    """A running worker with this module's handlers, and what they saw."""
    reg, seen = _registry()
    async with running_worker(dsn, reg, **overrides) as worker:
        yield worker, seen


async def _finished(pool_or_conn: Any, job_id: int) -> Any:
    async def check() -> Any:
        job = await get_job(pool_or_conn, job_id)
        return job if job and job.status in ("completed", "failed", "cancelled") else None

    return await eventually(check, what=f"job {job_id} to finish")


async def test_outcomes(pg_dsn: str, conn: asyncpg.Connection) -> None:
    async with _worker(pg_dsn) as (_, seen):
        jobs = await enqueue_many(
            conn,
            [
                NewJob("echo", {"x": 1}),
                NewJob("flaky", max_tries=3),
                NewJob("permanent", max_tries=5),
                NewJob("not_json"),
            ],
        )
        echo, flaky, permanent, not_json = [await _finished(conn, job.id) for job, _ in jobs]
    assert (echo.status, echo.attempts) == ("completed", 1)
    assert echo.result == {"payload": {"x": 1}, "attempt": 1, "job": echo.id}
    assert (flaky.status, flaky.attempts, seen["flaky"]) == ("failed", 3, 3)
    assert flaky.last_error == "ValueError: flaky failure 3"
    assert (permanent.status, permanent.attempts) == ("failed", 1)
    assert permanent.last_error == "permanent error: the payload names no recipient"
    assert (not_json.status, not_json.attempts) == ("failed", 1)
    assert "not JSON" in (not_json.last_error or "")
    # a job type no handler here knows waits for a worker that has one:
    # tests/integration/test_firsthour_unknown_types.py


async def test_a_retried_job_waits_for_its_backoff(pg_dsn: str, conn: asyncpg.Connection) -> None:
    async with _worker(pg_dsn, backoff_base=3600.0, backoff_max=7200.0):
        job, _ = await enqueue(conn, NewJob("flaky", max_tries=2))

        async def retried() -> Any:
            current = await get_job(conn, job.id)
            return current if current and current.last_error else None

        current = await eventually(retried, what="the first failure")
    assert (current.status, current.attempts) == ("pending", 1)
    assert current.worker_id is None
    delay = (current.run_at - current.started_at).total_seconds()
    assert 1800 - 5 <= delay <= 3600 + 5  # half to all of base * 2^0


async def test_timeouts_count_as_failed_attempts(pg_dsn: str, conn: asyncpg.Connection) -> None:
    async with _worker(pg_dsn, default_job_timeout=0.3) as (_, seen):
        by_job, _ = await enqueue(
            conn, NewJob("sleep", {"seconds": 30}, timeout_seconds=0.2, max_tries=1)
        )
        by_spec, _ = await enqueue(conn, NewJob("slow_by_spec", max_tries=1))
        by_default, _ = await enqueue(conn, NewJob("sleep", {"seconds": 30}, max_tries=2))
        by_job = await _finished(conn, by_job.id)
        by_spec = await _finished(conn, by_spec.id)
        by_default = await _finished(conn, by_default.id)
    assert (by_job.status, by_job.last_error) == ("failed", "timed out after 0.2s")
    assert (by_spec.status, by_spec.last_error) == ("failed", "timed out after 0.2s")
    assert (by_default.status, by_default.attempts) == ("failed", 2)
    assert by_default.last_error == "timed out after 0.3s"
    assert seen["cancelled"] == 3  # the handlers were really stopped


async def test_cancelling_a_running_job_stops_its_handler(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    async with _worker(pg_dsn, max_concurrent_jobs=1) as (worker, seen):
        job, _ = await enqueue(conn, NewJob("sleep", {"seconds": 60}))
        await asyncio.wait_for(seen["started"].wait(), 30)
        await cancel_job(conn, job.id)
        await eventually(lambda: _true(seen["cancelled"] == 1), what="the handler to stop")
        # its slot is free again: the only slot runs the next job
        follow, _ = await enqueue(conn, NewJob("echo"))
        assert (await _finished(conn, follow.id)).status == "completed"
        assert not worker.loop.running
    final = await get_job(conn, job.id)
    assert (final.status, final.result) == ("cancelled", None)


async def _true(value: bool) -> bool:
    return value


async def test_at_most_three_connections_whatever_the_concurrency(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    async with _worker(pg_dsn, max_concurrent_jobs=200, worker_name="conn-count") as (worker, _):
        await enqueue_many(conn, [NewJob("sleep", {"seconds": 0.05}) for _ in range(2000)])
        most = 0
        while await conn.fetchval("SELECT count(*) FROM jobs WHERE status <> 'completed'"):
            most = max(
                most,
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    worker.application_name,
                ),
            )
            await asyncio.sleep(0.02)
        assert 1 <= most <= 3


async def test_notifications_wake_an_idle_worker(pg_dsn: str, conn: asyncpg.Connection) -> None:
    # with an hour between polls, only LISTEN/NOTIFY can start these jobs
    async with _worker(pg_dsn, poll_interval=3600.0, worker_queues=["a", "b"]) as (worker, _):
        await asyncio.wait_for(worker.waker.connected.wait(), 30)
        await asyncio.sleep(0.3)  # the wake-ups at start have come and gone
        for queue in ("a", "b", "a"):
            job, _ = await enqueue(conn, NewJob("echo", queue_name=queue))
            assert (await _finished(conn, job.id)).status == "completed"


async def test_heartbeat_reports_in_flight_and_drain_deregisters(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    async with _worker(pg_dsn, heartbeat_seconds=0.1) as (worker, _):
        await enqueue_many(conn, [NewJob("sleep", {"seconds": 60}) for _ in range(2)])

        async def two_in_flight() -> Any:
            return await conn.fetchval("SELECT in_flight = 2 FROM workers WHERE id = $1", worker.id)

        await eventually(two_in_flight, what="the heartbeat to report 2 jobs in flight")
        row = await conn.fetchrow("SELECT * FROM workers WHERE id = $1", worker.id)
        assert row["name"] == "test-worker" and row["queues"] == ["default"]
        assert row["concurrency"] == 4
    assert await conn.fetchval("SELECT count(*) FROM workers") == 0


async def test_drain_finishes_running_jobs_and_interrupts_late_ones(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    async with _worker(pg_dsn, drain_timeout=3.0) as (worker, _):
        quick, _ = await enqueue(conn, NewJob("sleep", {"seconds": 0.2}))
        late, _ = await enqueue(conn, NewJob("sleep", {"seconds": 60}))
        await eventually(lambda: _true(len(worker.loop.running) == 2), what="both to start")
        await worker.shutdown()
    quick = await get_job(conn, quick.id)
    assert (quick.status, quick.result) == ("completed", {"slept": 0.2})
    late = await get_job(conn, late.id)
    assert (late.status, late.attempts, late.worker_id) == ("pending", 1, None)
    assert "interrupted" in (late.last_error or "")


async def test_drain_releases_a_claim_that_returns_after_the_stop(pg_dsn: str) -> None:
    conn = await connect(pg_dsn)
    blocker = await asyncpg.connect(pg_dsn)
    try:
        await enqueue_many(conn, [NewJob("sleep", {"seconds": 0}) for _ in range(3)])
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        async with _worker(pg_dsn) as (worker, seen):
            await eventually(
                lambda: fetchval(pg_dsn, "SELECT count(*) FROM pg_locks WHERE NOT granted"),
                what="the claim to wait on the lock",
            )
            shutdown = asyncio.create_task(worker.shutdown())
            await asyncio.sleep(0.2)
            await lock.commit()  # the claim now returns its batch to a stopping worker
            await shutdown
        assert not seen["started"].is_set()
        rows = await conn.fetch("SELECT status, attempts, worker_id FROM jobs")
        assert [(r["status"], r["attempts"], r["worker_id"]) for r in rows] == [
            ("pending", 0, None)
        ] * 3
    finally:
        await blocker.close()
        await conn.close()


async def test_a_live_worker_rescues_a_dead_workers_job(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    dead = uuid.uuid4()
    await claims.register_worker(conn, dead, "dead", ["default"], 1, 1, 0.1)
    job, _ = await enqueue(conn, NewJob("echo", {"n": 1}))
    await claims.claim_jobs(conn, ["default"], 1, dead, 0.1)
    await asyncio.sleep(0.2)  # both leases run out
    async with _worker(pg_dsn, rescue_interval=0.2):
        done = await _finished(conn, job.id)
    assert (done.status, done.attempts, done.result["attempt"]) == ("completed", 2, 2)


async def test_retention_prunes_old_finished_jobs(pg_dsn: str, conn: asyncpg.Connection) -> None:
    old, _ = await enqueue(conn, NewJob("echo"))
    recent, _ = await enqueue(conn, NewJob("echo"))
    async with _worker(pg_dsn, retention_seconds=3600.0, retention_interval=0.2, retention_batch=1):
        await _finished(conn, old.id)
        await _finished(conn, recent.id)
        await conn.execute(
            "UPDATE jobs SET finished_at = now() - interval '2 hours' WHERE id = $1", old.id
        )
        await eventually(lambda: _gone(conn, old.id), what="the old job to be pruned")
    assert await get_job(conn, recent.id) is not None


async def _gone(conn: asyncpg.Connection, job_id: int) -> bool:
    return await get_job(conn, job_id) is None


async def test_health_and_metrics_endpoints(pg_dsn: str, conn: asyncpg.Connection) -> None:
    async with _worker(pg_dsn) as (worker, _):
        for job, _ in await enqueue_many(conn, [NewJob("echo"), NewJob("permanent")]):
            await _finished(conn, job.id)
        base = f"http://127.0.0.1:{worker.http.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            health = await client.get("/healthz")
            metrics = await client.get("/metrics")
            missing = await client.get("/nope")
    assert health.status_code == 200
    assert health.json()["worker_id"] == str(worker.id)
    assert health.json()["listening"] is True
    text = metrics.text
    assert 'jobqueue_jobs_completed_total{job_type="echo"} 1.0' in text
    assert 'jobqueue_jobs_failed_total{final="true",job_type="permanent"} 1.0' in text
    assert 'jobqueue_job_duration_seconds_count{job_type="echo"} 1.0' in text
    assert "jobqueue_jobs_in_flight 0.0" in text
    assert "jobqueue_claim_latency_seconds_count" in text
    assert missing.status_code == 404


async def test_listen_reconnects_after_a_database_restart(private_pg_server: Any) -> None:
    dsn = await private_pg_server.create_database("restart")
    conn: asyncpg.Connection | None = None
    async with _worker(dsn, poll_interval=3600.0) as (worker, _):
        await asyncio.wait_for(worker.waker.connected.wait(), 30)
        private_pg_server.restart()
        await eventually(
            lambda: _true(worker.waker.connections == 2), what="the LISTEN connection to come back"
        )
        await asyncio.sleep(0.3)  # the wake-up after the reconnect has come and gone
        conn = await connect(dsn)
        try:
            # with an hour between polls, only the new LISTEN connection can start this job
            job, _ = await enqueue(conn, NewJob("echo"))
            assert (await _finished(conn, job.id)).status == "completed"
        finally:
            await conn.close()


async def test_a_drain_during_an_outage_ends_and_the_job_is_rescued_later(
    private_pg_server: Any,
) -> None:
    dsn = await private_pg_server.create_database("outage")
    reg, seen = _registry()
    conn = await connect(dsn)
    job, _ = await enqueue(conn, NewJob("sleep", {"seconds": 0.5}))
    await conn.close()
    async with running_worker(dsn, reg, lease_seconds=1.0, drain_timeout=1.0) as worker:
        await asyncio.wait_for(seen["started"].wait(), 30)
        private_pg_server.stop()
        # the acknowledgement cannot be written: the drain gives up instead of hanging
        await asyncio.wait_for(worker.shutdown(), 60)
    private_pg_server.start()
    conn = await connect(dsn)
    try:
        async with running_worker(dsn, reg, lease_seconds=1.0, rescue_interval=0.2):
            done = await _finished(conn, job.id)
        assert (done.status, done.attempts) == ("completed", 2)
    finally:
        await conn.close()


async def test_a_result_the_database_refuses_fails_only_its_own_job(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    # the batch is written again one by one, and only that job fails
    reg, _ = _registry()

    @reg.register("refused_result")
    async def refused_result(payload: dict[str, Any], ctx: JobContext) -> Any:
        return {"text": "a\ud800b"}  # a lone surrogate: json.dumps writes it, jsonb refuses it

    async with running_worker(pg_dsn, reg, ack_batch_size=10):
        jobs = await enqueue_many(conn, [NewJob("echo"), NewJob("refused_result"), NewJob("echo")])
        before, refused, after = [await _finished(conn, job.id) for job, _ in jobs]
    assert (before.status, after.status) == ("completed", "completed")
    assert refused.status == "failed"
    assert (refused.last_error or "").startswith("result could not be stored")
