"""Bulk retry and cancel by filter against real PostgreSQL: the filters, batches that go on from
`after_id` when the time budget runs out, unique keys, and the refusals (no filter without
`all`, a status the action cannot move)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.integration.api_support import JOBS, api_client, api_settings
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue, enqueue_many
from worker.db.workflows import enqueue_job


async def _setup(dsn: str) -> asyncpg.Connection:
    conn = await connect(dsn)
    jobs = [NewJob("noop", queue_name=q) for q in ["a"] * 5 + ["b"] * 3]
    jobs += [NewJob("emails", {"to": "x@y.z", "subject": "s", "body": "b"}, queue_name="a")] * 2
    await enqueue_many(conn, jobs)
    await conn.execute(
        "UPDATE jobs SET status = 'failed', attempts = max_tries, finished_at = now()"
    )
    return conn


async def _statuses(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status::text, count(*) FROM jobs GROUP BY 1")
    return {r[0]: r[1] for r in rows}


async def test_retry_and_cancel_by_filter(pg_dsn: str) -> None:
    conn = await _setup(pg_dsn)
    try:
        async with api_client(api_settings(pg_dsn)) as client:
            answer = await client.post(
                f"{JOBS}/retry", json={"status": "failed", "queue_name": "a", "job_type": "noop"}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["matched"] == 5 and answer.json()["done"] is True
            retried = await conn.fetch("SELECT * FROM jobs WHERE status = 'pending'")
            assert {r["queue_name"] for r in retried} == {"a"}
            assert all(r["max_tries"] > r["attempts"] for r in retried)

            cancel = await client.post(f"{JOBS}/cancel", json={"queue_name": "a"})
            assert cancel.json()["matched"] == 5
            old = (datetime.now(UTC) - timedelta(days=1)).isoformat()
            nothing = await client.post(f"{JOBS}/retry", json={"created_before": old})
            assert nothing.json()["matched"] == 0
            everything = await client.post(f"{JOBS}/retry", json={"all": True})
            assert everything.json()["matched"] == 10
            assert await _statuses(conn) == {"pending": 10}
    finally:
        await conn.close()


async def test_a_small_time_budget_returns_early_and_after_id_goes_on(pg_dsn: str) -> None:
    conn = await _setup(pg_dsn)
    settings = api_settings(pg_dsn, bulk_batch_size=3, bulk_time_budget=0.000001)
    try:
        async with api_client(settings) as client:
            body: dict[str, Any] = {"status": "failed"}
            total, calls = 0, 0
            while True:
                answer = (await client.post(f"{JOBS}/retry", json=body)).json()
                total += answer["matched"]
                calls += 1
                if answer["done"]:
                    break
                body = {**body, "after_id": answer["after_id"], "up_to_id": answer["up_to_id"]}
            assert total == 10 and calls >= 4  # batches of 3, one per call
            assert await _statuses(conn) == {"pending": 10}
    finally:
        await conn.close()


async def test_retry_leaves_a_job_whose_unique_key_is_held(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    await enqueue_many(conn, [NewJob("noop", unique_key="k"), NewJob("noop", unique_key="k2")])
    await conn.execute("UPDATE jobs SET status = 'failed'")
    await enqueue_many(conn, [NewJob("noop", unique_key="k")])  # holds "k" now
    await conn.execute(  # and a second failed holder of "k2" in the same batch
        "INSERT INTO jobs (job_type, status, unique_key) VALUES ('noop', 'failed', 'k2')"
    )
    async with api_client(api_settings(pg_dsn)) as client:
        answer = await client.post(f"{JOBS}/retry", json={"status": "failed"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["matched"] == 1  # the first "k2" only
    active = await conn.fetch(
        "SELECT unique_key, count(*) FROM jobs WHERE status = 'pending' GROUP BY 1 ORDER BY 1"
    )
    assert [(r[0], r[1]) for r in active] == [("k", 1), ("k2", 1)]


async def test_refusals_name_the_field(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        for path in ("retry", "cancel"):
            empty = await client.post(f"{JOBS}/{path}", json={})
            assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "all"]
        wrong = await client.post(f"{JOBS}/retry", json={"status": "pending"})
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "status"]
        wrong = await client.post(f"{JOBS}/cancel", json={"status": "completed"})
        assert wrong.status_code == 422
        typo = await client.post(f"{JOBS}/cancel", json={"queue": "a"})
        assert typo.status_code == 422


async def test_bulk_cancel_cancels_blocked_dependents_as_a_single_cancel_does(
    pg_dsn: str,
    conn: asyncpg.Connection,
) -> None:
    root, _ = await enqueue(conn, NewJob("noop", queue_name="roots", delay_seconds=3600))
    child = await enqueue_job(conn, NewJob("noop", queue_name="children"), depends_on=[root.id])
    async with api_client(api_settings(pg_dsn)) as client:
        answer = await client.post(f"{JOBS}/cancel", json={"queue_name": "roots"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["matched"] == 1
    row = await conn.fetchrow("SELECT status::text, last_error FROM jobs WHERE id = $1", child)
    assert row is not None and row["status"] == "cancelled"
    assert str(root.id) in (row["last_error"] or "")
