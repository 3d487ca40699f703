"""Queue pause and resume against real PostgreSQL: a paused queue takes jobs but none is
claimed, running jobs finish, a never-seen name gets its row; GET /queues shows it all; and
the snooze a handler asks for."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import asyncpg

from tests.integration.api_support import JOBS, api_client, api_settings
from tests.integration.queue_support import eventually, running_worker
from worker.db import claims, queues
from worker.db.jobs import NewJob, enqueue, enqueue_many, get_job
from worker.handlers import Snooze
from worker.handlers.base import HandlerRegistry, JobContext

QUEUES = "/api/v1/queue/queues"


async def test_claims_skip_a_paused_queue_and_take_it_again_once_resumed(
    conn: asyncpg.Connection,
) -> None:
    await enqueue_many(conn, [NewJob("noop", queue_name=q) for q in ("a", "b", "a", "b")])
    await queues.set_paused(conn, "a", True)
    me = uuid.uuid4()
    got = await claims.claim_jobs(conn, ["a", "b"], 10, me, 30)
    assert sorted(j.queue_name for j in got) == ["b", "b"]
    assert await claims.claim_jobs(conn, ["a"], 10, me, 30) == []
    await queues.set_paused(conn, "a", False)
    again = await claims.claim_jobs(conn, ["a", "b"], 10, me, 30)
    assert sorted(j.queue_name for j in again) == ["a", "a"]


async def test_api_pause_resume_and_the_queue_list(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        # never seen: pausing creates its row, and it is listed with zero counts
        paused = await client.post(f"{QUEUES}/later/pause")
        assert paused.status_code == 200, paused.text
        shown = paused.json()
        assert shown["name"] == "later" and shown["paused"] is True
        assert shown["ready"] == {"count": 0, "kind": "exact"} and shown["blocked"] == 0
        assert shown["concurrency_limit"] is None and shown["rate_limit"] is None

        # enqueueing into a paused queue still works
        posted = await client.post(JOBS, json={"job_type": "noop", "queue_name": "later"})
        assert posted.status_code == 201
        await client.post(JOBS, json={"job_type": "noop"})
        listed = (await client.get(QUEUES)).json()
        by_name = {q["name"]: q for q in listed["queues"]}
        assert set(by_name) == {"default", "later"}
        assert by_name["later"]["paused"] is True and by_name["later"]["ready"]["count"] == 1
        assert by_name["default"]["paused"] is False
        for field in ("concurrency_limit", "key_concurrency_limit", "rate_limit", "running"):
            assert field in by_name["default"]

        resumed = await client.post(f"{QUEUES}/later/resume")
        assert resumed.json()["paused"] is False
        bad = await client.post(f"{QUEUES}/{'x' * 201}/pause")
        assert bad.status_code == 422


async def test_a_paused_worker_queue_lets_running_jobs_finish_and_claims_no_more(
    pg_dsn: str,
    conn: asyncpg.Connection,
) -> None:
    registry = HandlerRegistry()
    started = asyncio.Event()
    release = asyncio.Event()

    @registry.register("hold")
    async def hold(payload: dict[str, Any], ctx: JobContext) -> Any:
        started.set()
        await release.wait()
        return {"held": True}

    async with running_worker(pg_dsn, registry, max_concurrent_jobs=1) as _worker:
        first, _ = await enqueue(conn, NewJob("hold"))
        await asyncio.wait_for(started.wait(), 30)
        await queues.set_paused(conn, "default", True)
        second, _ = await enqueue(conn, NewJob("hold"))
        release.set()

        async def first_done() -> bool:
            job = await get_job(conn, first.id)
            return job is not None and job.status == "completed"

        await eventually(first_done, what="the running job to finish")
        await asyncio.sleep(1.0)  # several poll intervals: the worker must not take it
        assert (await get_job(conn, second.id)).status == "pending"  # type: ignore[union-attr]
        await queues.set_paused(conn, "default", False)

        async def second_done() -> bool:
            job = await get_job(conn, second.id)
            return job is not None and job.status == "completed"

        await eventually(second_done, what="the job to run once resumed")


async def test_snooze_returns_the_job_later_without_using_a_try_up_to_the_cap(
    pg_dsn: str,
    conn: asyncpg.Connection,
) -> None:
    registry = HandlerRegistry()
    snoozed: Counter[int] = Counter()

    @registry.register("snoozy")
    async def snoozy(payload: dict[str, Any], ctx: JobContext) -> Any:
        if payload["times"] == "always":
            raise Snooze(0)
        if snoozed[ctx.job_id] < payload["times"]:
            snoozed[ctx.job_id] += 1
            return Snooze(0.05)  # returning it works as raising it does
        return {"attempt": ctx.attempt}

    async with running_worker(pg_dsn, registry, max_snoozes=3):
        twice, _ = await enqueue(conn, NewJob("snoozy", {"times": 2}, max_tries=1))
        forever, _ = await enqueue(conn, NewJob("snoozy", {"times": "always"}, max_tries=5))

        async def finished(job_id: int) -> Any:
            job = await get_job(conn, job_id)
            return job if job and job.status in ("completed", "failed") else None

        done = await eventually(lambda: finished(twice.id), what="the snoozing job")
        assert done.status == "completed" and done.attempts == 1
        assert await conn.fetchval("SELECT snoozes FROM jobs WHERE id = $1", twice.id) == 2
        capped = await eventually(lambda: finished(forever.id), what="the capped job")
        assert capped.status == "failed"
        assert "JOBQUEUE_MAX_SNOOZES" in (capped.last_error or "")
        assert capped.attempts == 1  # snoozes used no try; the cap failed it for good
        assert await conn.fetchval("SELECT snoozes FROM jobs WHERE id = $1", forever.id) == 3
