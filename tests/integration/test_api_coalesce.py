"""Grouped single-job POSTs: each request still gets its own job, idempotency holds across
concurrent requests, and one bad job fails only its own request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from tests.integration.api_support import JOBS, SEED_JOB, api_client, api_settings
from worker.api.coalesce import EnqueueCoalescer
from worker.db.errors import is_transient
from worker.db.jobs import Job, NewJob, enqueue_many


async def test_concurrent_posts_each_get_their_own_job(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        bodies = [{**SEED_JOB, "payload": {**SEED_JOB["payload"], "n": i}} for i in range(60)]
        responses = await asyncio.gather(*(client.post(JOBS, json=b) for b in bodies))
        assert {r.status_code for r in responses} == {201}
        jobs = [r.json() for r in responses]
        assert [job["payload"]["n"] for job in jobs] == list(range(60))
        assert len({job["id"] for job in jobs}) == 60
        listed = (await client.get(JOBS, params={"limit": 100})).json()["jobs"]
        assert len(listed) == 60


async def test_concurrent_posts_with_one_key_make_one_job(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        body = {**SEED_JOB, "idempotency_key": "once"}
        responses = await asyncio.gather(*(client.post(JOBS, json=body) for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in responses}) == 1


async def test_a_bad_job_fails_only_its_own_request(pool: asyncpg.Pool) -> None:
    batches: list[int] = []

    async def recorded(jobs: Sequence[NewJob]) -> list[tuple[Job, bool]]:
        batches.append(len(jobs))
        return await enqueue_many(pool, jobs)

    coalescer = EnqueueCoalescer(recorded, flushers=1, max_batch=100, is_outage=is_transient)
    # priority past PostgreSQL's integer: the API refuses it, the database would too
    jobs = [NewJob("noop", {"n": i}, priority=2**40 if i == 3 else 0) for i in range(8)]
    outcomes = await asyncio.gather(*(coalescer.enqueue(j) for j in jobs), return_exceptions=True)

    # all eight went together; the statement failed, so each was tried again alone
    assert batches == [8] + [1] * 8
    for index, outcome in enumerate(outcomes):
        if index == 3:
            assert isinstance(outcome, Exception)
        else:
            assert isinstance(outcome, tuple), outcome
            job, created = outcome
            assert created and job.payload == {"n": index}
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 7


async def test_an_outage_fails_the_whole_group_at_once() -> None:
    calls: list[int] = []
    busy = asyncio.Event()

    async def unreachable(jobs: Sequence[NewJob]) -> list[tuple[Job, bool]]:
        calls.append(len(jobs))
        busy.set()
        await asyncio.sleep(0.01)
        raise ConnectionRefusedError("no database")

    coalescer = EnqueueCoalescer(
        unreachable, flushers=1, max_batch=100, is_outage=lambda e: isinstance(e, OSError)
    )
    first = asyncio.ensure_future(coalescer.enqueue(NewJob("noop")))
    await busy.wait()  # the only flusher is busy with the first job: the next ones wait
    rest = [asyncio.ensure_future(coalescer.enqueue(NewJob("noop"))) for _ in range(4)]
    outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
    assert all(isinstance(o, ConnectionRefusedError) for o in outcomes)
    assert calls == [1, 4]  # grouped while busy, and not retried one by one


async def test_refused_jobs_do_not_disturb_concurrent_ones(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        bad = {**SEED_JOB, "priority": 2**40}
        responses = await asyncio.gather(
            *(client.post(JOBS, json=SEED_JOB if i % 2 else bad) for i in range(10))
        )
        assert [r.status_code for r in responses] == [422, 201] * 5
        assert (await client.post(JOBS, json=SEED_JOB)).status_code == 201
