"""Stats, queues and workers: exact on small tables, bounded or estimated on large ones."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.integration.api_support import JOBS, api_client, api_settings
from tests.integration.queue_support import complete_claimed, fail_claimed
from worker.db import claims, inspect
from worker.db.jobs import NewJob, enqueue_many

QUEUE_API = "/api/v1/queue"


@pytest.fixture
async def client(pg_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api_settings(pg_dsn)) as c:
        yield c


async def run_some(
    conn: asyncpg.Connection, worker: uuid.UUID, queue: str, *, complete: int, fail: int
) -> list[claims.ClaimedJob]:
    """Claims complete + fail + the rest as this worker; completes and fails some of them."""
    claimed = await claims.claim_jobs(conn, [queue], 100, worker, 30.0)
    done, failed = claimed[:complete], claimed[complete : complete + fail]
    await complete_claimed(conn, worker, done)
    await fail_claimed(conn, worker, failed, "boom")
    return claimed[complete + fail :]


async def test_stats_overview_counts_every_status_exactly(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    worker = uuid.uuid4()
    await claims.register_worker(conn, worker, "pod-a", ["default"], 10, 0, 30.0)
    await enqueue_many(conn, [NewJob("noop") for _ in range(9)])
    await enqueue_many(conn, [NewJob("noop", queue_name="later", delay_seconds=3600)] * 2)
    await run_some(conn, worker, "default", complete=3, fail=1)  # 3 done, 1 failed, 5 running
    await enqueue_many(conn, [NewJob("emails", queue_name="mail") for _ in range(4)])
    mail = (await client.get(JOBS, params={"queue_name": "mail", "limit": 1})).json()["jobs"][0]
    await client.post(f"{JOBS}/{mail['id']}/cancel")

    response = await client.get(f"{JOBS}/stats/overview")
    assert response.status_code == 200
    body = response.json()
    counts = {status: value["count"] for status, value in body["by_status"].items()}
    assert counts == {
        "pending": 5,
        "running": 5,
        "completed": 3,
        "failed": 1,
        "cancelled": 1,
        "blocked": 0,  # every status of worker.db.statuses, 0004's included
    }
    assert {value["kind"] for value in body["by_status"].values()} == {"exact"}
    assert body["total"] == {"count": 15, "kind": "exact"}
    assert body["done_last_minute"] == {"count": 5, "kind": "exact"}
    assert body["oldest_pending_age_seconds"] is not None
    assert 0 <= body["oldest_pending_age_seconds"] < 60

    queues = {q["queue_name"]: q for q in body["by_queue"]}
    assert set(queues) == {"default", "later", "mail"}
    assert queues["default"]["running"] == 5
    assert queues["default"]["ready"] == {"count": 0, "kind": "exact"}
    assert queues["default"]["workers"] == 1
    assert queues["later"]["scheduled"] == {"count": 2, "kind": "exact"}
    assert queues["later"]["ready"]["count"] == 0
    assert queues["later"]["oldest_ready_age_seconds"] is None
    assert queues["mail"]["ready"] == {"count": 3, "kind": "exact"}


async def test_queues_walk_priorities_and_report_ages(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    jobs = [NewJob("noop", queue_name="q", priority=p) for p in (5, 5, 0, -3, 0)]
    jobs += [NewJob("noop", queue_name="q", priority=9, delay_seconds=600)]
    jobs += [NewJob("noop", queue_name="a", priority=1)]
    await enqueue_many(conn, jobs)
    body = (await client.get(f"{QUEUE_API}/queues")).json()
    assert body["truncated"] is False
    queues = {q["name"]: q for q in body["queues"]}
    assert list(queues) == ["a", "q"]
    assert queues["q"]["ready"] == {"count": 5, "kind": "exact"}
    assert queues["q"]["scheduled"] == {"count": 1, "kind": "exact"}
    assert queues["q"]["running"] == 0
    assert queues["q"]["workers"] == 0
    assert queues["a"]["ready"]["count"] == 1
    assert queues["q"]["oldest_ready_age_seconds"] >= 0


async def test_counts_past_the_bound_become_estimates(conn: asyncpg.Connection) -> None:
    # statistics must appear only when this test runs ANALYZE
    await conn.execute("ALTER TABLE jobs SET (autovacuum_enabled = false)")
    await enqueue_many(conn, [NewJob("noop", queue_name="big") for _ in range(40)])
    await enqueue_many(conn, [NewJob("noop", queue_name="big", delay_seconds=900)] * 30)
    never_analyzed = await inspect.stats_overview(conn, bound=25)
    assert never_analyzed.total == inspect.Count(25, "at_least")
    assert never_analyzed.by_status["pending"] == inspect.Count(25, "at_least")
    assert never_analyzed.by_status["running"] == inspect.Count(0, "exact")
    assert never_analyzed.by_status["failed"] == inspect.Count(None, "unknown")

    await conn.execute("ANALYZE jobs")
    stats = await inspect.stats_overview(conn, bound=25)
    assert stats.total == inspect.Count(70, "estimate")
    assert stats.by_status["pending"] == inspect.Count(70, "estimate")
    assert stats.by_status["running"] == inspect.Count(0, "exact")
    assert stats.by_status["completed"] == inspect.Count(0, "estimate")
    (big,) = stats.queues.queues
    assert big.ready == inspect.Count(25, "at_least")
    assert big.scheduled == inspect.Count(25, "at_least")

    # 70 rows are over ten bounds of 5: the statistics alone answer, without a sample
    large = await inspect.stats_overview(conn, bound=5)
    assert large.total == inspect.Count(70, "estimate")
    assert large.by_status["pending"] == inspect.Count(70, "estimate")
    assert large.by_status["running"] == inspect.Count(0, "exact")


def test_estimates_come_from_the_status_shares() -> None:
    estimates = inspect.estimate_statuses(1000, ["completed", "pending"], [0.75, 0.25])
    assert estimates["completed"] == inspect.Count(750, "estimate")
    assert estimates["pending"] == inspect.Count(250, "estimate")
    assert estimates["failed"] == inspect.Count(0, "estimate")
    assert inspect.estimate_statuses(-1, None, None)["pending"] == inspect.Count(None, "unknown")
    counted = inspect.Count(25, "at_least")
    assert inspect.merge_bounded(counted, inspect.Count(10, "estimate")).count == 25
    assert (
        inspect.merge_bounded(inspect.Count(3, "exact"), inspect.Count(10, "estimate")).count == 3
    )


async def test_workers_lists_live_workers_with_their_jobs(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    live, gone = uuid.uuid4(), uuid.uuid4()
    await claims.register_worker(conn, live, "pod-live", ["default", "mail"], 4, 2, 30.0)
    await claims.register_worker(conn, gone, "pod-gone", ["default"], 4, 0, 0.001)
    await enqueue_many(conn, [NewJob("noop"), NewJob("emails"), NewJob("noop")])
    running = await claims.claim_jobs(conn, ["default"], 2, live, 30.0)

    body = (await client.get(f"{QUEUE_API}/workers")).json()
    (worker,) = body["workers"]
    assert worker["id"] == str(live)
    assert worker["name"] == "pod-live"
    assert worker["queues"] == ["default", "mail"]
    assert (worker["concurrency"], worker["in_flight"]) == (4, 2)
    assert [job["id"] for job in worker["jobs"]] == [job.id for job in running]
    assert {job["attempts"] for job in worker["jobs"]} == {1}
    assert worker["jobs"][0]["started_at"] is not None

    shown = (await client.get(f"{JOBS}/{running[0].id}")).json()
    assert shown["status"] == "running"
    assert shown["worker_id"] == str(live)
    json.dumps(body)  # plain JSON all the way down
