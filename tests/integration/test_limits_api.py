"""`PATCH /queues/{name}`: set, change and clear limits; bad limits are 422s naming the field;
the answer shows what runs and what the limits hold back."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from tests.integration.api_support import api_client, api_settings
from tests.integration.limits_support import add_jobs
from worker.db import claims

QUEUES = "/api/v1/queue/queues"


async def test_patch_sets_changes_and_clears_limits(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        answer = await client.patch(
            f"{QUEUES}/emails",
            json={
                "concurrency_limit": 5,
                "key_concurrency_limit": 2,
                "rate_limit": {"jobs": 100, "per_seconds": 60},
            },
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body == {
            "name": "emails",
            "paused": False,
            "concurrency_limit": 5,
            "key_concurrency_limit": 2,
            "rate_limit": {"jobs": 100, "per_seconds": 60.0},
            "running": 0,
            "recent_starts": 0,
            "blocked": {"count": 0, "kind": "exact"},
        }
        # a field left out keeps its value; null clears it
        answer = await client.patch(f"{QUEUES}/emails", json={"rate_limit": None})
        assert answer.json()["rate_limit"] is None
        assert answer.json()["concurrency_limit"] == 5
        answer = await client.patch(
            f"{QUEUES}/emails", json={"concurrency_limit": None, "key_concurrency_limit": None}
        )
        assert (answer.json()["concurrency_limit"], answer.json()["key_concurrency_limit"]) == (
            None,
            None,
        )


async def test_the_answer_counts_running_and_blocked_jobs(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    await add_jobs(conn, "default", ["a"] * 4 + ["b"] * 2)
    async with api_client(api_settings(pg_dsn)) as client:
        await client.patch(f"{QUEUES}/default", json={"key_concurrency_limit": 1})
        worker = uuid.uuid4()
        await claims.register_worker(conn, worker, "w", ["default"], 4, 0, 30)
        assert len(await claims.claim_jobs(conn, ["default"], 10, worker, 30)) == 2
        body = (await client.patch(f"{QUEUES}/default", json={})).json()
        assert (body["running"], body["blocked"]) == (2, {"count": 4, "kind": "exact"})
        body = (await client.patch(f"{QUEUES}/default", json={"concurrency_limit": 2})).json()
        assert body["blocked"]["count"] == 4
        body = (
            await client.patch(
                f"{QUEUES}/default", json={"rate_limit": {"jobs": 2, "per_seconds": 3600}}
            )
        ).json()
        assert body["recent_starts"] == 0  # starts under no rate limit are not recorded


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"concurrency_limit": 0}, ["body", "concurrency_limit"]),
        ({"concurrency_limit": -3}, ["body", "concurrency_limit"]),
        ({"concurrency_limit": 2**31}, ["body", "concurrency_limit"]),
        ({"concurrency_limit": "5"}, ["body", "concurrency_limit"]),
        ({"concurrency_limit": 1.5}, ["body", "concurrency_limit"]),
        ({"key_concurrency_limit": 0}, ["body", "key_concurrency_limit"]),
        ({"rate_limit": {"jobs": 100, "per_seconds": 0}}, ["body", "rate_limit", "per_seconds"]),
        ({"rate_limit": {"jobs": 100, "per_seconds": -1}}, ["body", "rate_limit", "per_seconds"]),
        ({"rate_limit": {"jobs": 0, "per_seconds": 60}}, ["body", "rate_limit", "jobs"]),
        ({"rate_limit": {"jobs": 10}}, ["body", "rate_limit", "per_seconds"]),
        ({"rate_limit": {"jobs": 10, "per_seconds": 1e12}}, ["body", "rate_limit", "per_seconds"]),
        ({"concurency_limit": 5}, ["body", "concurency_limit"]),
    ],
)
async def test_bad_limits_are_422_naming_the_field(
    pg_dsn: str, body: dict[str, Any], field: list[str]
) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        answer = await client.patch(f"{QUEUES}/emails", json=body)
        assert answer.status_code == 422, answer.text
        assert field in [error["loc"] for error in answer.json()["detail"]], answer.text
        # nothing was written
        assert (await client.patch(f"{QUEUES}/emails", json={})).json()["concurrency_limit"] is None


async def test_a_bad_queue_name_is_422_naming_it(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        answer = await client.patch(f"{QUEUES}/a%00b", json={"concurrency_limit": 1})
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == ["path", "name"]
        answer = await client.patch(f"{QUEUES}/{'x' * 201}", json={"concurrency_limit": 1})
        assert answer.status_code == 422, answer.text


async def test_patch_needs_the_token_when_one_is_set(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn, api_token="s3cret")) as client:
        answer = await client.patch(f"{QUEUES}/emails", json={"concurrency_limit": 1})
        assert answer.status_code == 401
        answer = await client.patch(
            f"{QUEUES}/emails",
            json={"concurrency_limit": 1},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert answer.status_code == 200


async def test_jobs_enqueued_with_a_concurrency_key_are_held_by_the_key_limit(
    pg_dsn: str,
    conn: asyncpg.Connection,
) -> None:
    async with api_client(api_settings(pg_dsn, allow_unknown_job_types=True)) as client:
        await client.patch(f"{QUEUES}/default", json={"key_concurrency_limit": 1})
        for key in ["tenant-a", "tenant-a", "tenant-b", None]:
            job = {"job_type": "t", "payload": {}, "concurrency_key": key}
            answer = await client.post("/api/v1/queue/jobs", json=job)
            assert answer.status_code in (200, 201), answer.text
        answer = await client.post(
            "/api/v1/queue/jobs", json={"job_type": "t", "concurrency_key": ""}
        )
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "concurrency_key"]
    keys = await conn.fetch("SELECT concurrency_key FROM jobs ORDER BY id")
    assert [r["concurrency_key"] for r in keys] == ["tenant-a", "tenant-a", "tenant-b", None]
    worker = uuid.uuid4()
    await claims.register_worker(conn, worker, "w", ["default"], 4, 0, 30)
    assert len(await claims.claim_jobs(conn, ["default"], 10, worker, 30)) == 3
