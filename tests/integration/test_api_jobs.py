"""The job endpoints against real PostgreSQL: enqueue, batch, list, show, cancel, retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.integration.api_support import JOBS, SEED_JOB, api_client, api_settings


@pytest.fixture
async def client(pg_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api_settings(pg_dsn, api_max_batch=5)) as c:
        yield c


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_seed_readme_examples_keep_their_shape(client: httpx.AsyncClient) -> None:
    # curl -X POST .../api/v1/queue/jobs -H 'Content-Type: application/json' -d '{...}'
    created = await client.post(JOBS, json=SEED_JOB, headers={"Content-Type": "application/json"})
    assert created.status_code == 201, created.text
    job = created.json()
    assert isinstance(job["id"], int)
    assert {k: job[k] for k in SEED_JOB} == SEED_JOB
    assert job["status"] == "pending"
    assert job["attempts"] == 0
    assert job["priority"] == 0
    for field in ("last_error", "result", "started_at", "finished_at", "worker_id"):
        assert job[field] is None
    assert parse_time(job["created_at"]) <= parse_time(job["run_at"]) + timedelta(seconds=1)

    # curl http://localhost:8001/api/v1/queue/jobs/stats/overview
    stats = await client.get(f"{JOBS}/stats/overview")
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["by_status"]["pending"] == {"count": 1, "kind": "exact"}
    assert body["total"] == {"count": 1, "kind": "exact"}
    assert [q["queue_name"] for q in body["by_queue"]] == ["default"]

    shown = await client.get(f"{JOBS}/{job['id']}")
    assert shown.status_code == 200
    assert shown.json() == {**job, "errors": [], "logs": []}  # one job adds its attempts


async def test_enqueue_takes_priority_schedule_and_timeout(client: httpx.AsyncClient) -> None:
    run_at = datetime.now(UTC) + timedelta(hours=1)
    response = await client.post(
        JOBS,
        json={
            "job_type": "noop",
            "priority": 7,
            "run_at": run_at.isoformat(),
            "timeout_seconds": 12.5,
            "queue_name": "reports",
        },
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["priority"] == 7
    assert job["timeout_seconds"] == 12.5
    assert job["queue_name"] == "reports"
    assert job["payload"] == {}
    assert abs(parse_time(job["run_at"]) - run_at) < timedelta(milliseconds=1)

    delayed = await client.post(JOBS, json={"job_type": "noop", "delay_seconds": 600})
    assert delayed.status_code == 201
    delay = parse_time(delayed.json()["run_at"]) - parse_time(delayed.json()["created_at"])
    assert timedelta(seconds=599) < delay < timedelta(seconds=601)


async def test_naive_run_at_is_taken_as_utc(client: httpx.AsyncClient) -> None:
    response = await client.post(JOBS, json={"job_type": "noop", "run_at": "2030-01-02T03:04:05"})
    assert response.status_code == 201, response.text
    assert parse_time(response.json()["run_at"]) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_run_at_and_delay_together_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        JOBS, json={"job_type": "noop", "run_at": "2030-01-01T00:00:00Z", "delay_seconds": 5}
    )
    assert response.status_code == 422
    assert "run_at or delay_seconds" in response.text


async def test_idempotency_key_returns_the_first_job_with_200(client: httpx.AsyncClient) -> None:
    body = {**SEED_JOB, "idempotency_key": "welcome-42"}
    first = await client.post(JOBS, json=body)
    again = await client.post(JOBS, json=body)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    # the same key with another job is a conflict, not the first job (docs/security.md)
    other = await client.post(
        JOBS, json={**body, "payload": {**SEED_JOB["payload"], "to": "other@example.com"}}
    )
    assert other.status_code == 409
    assert other.json()["detail"][0]["loc"] == ["body", "idempotency_key"]
    listed = await client.get(JOBS)
    assert len(listed.json()["jobs"]) == 1


async def test_batch_enqueues_in_order_and_reports_duplicates(client: httpx.AsyncClient) -> None:
    await client.post(JOBS, json={"job_type": "noop", "idempotency_key": "seen"})
    batch = [
        SEED_JOB,
        {"job_type": "noop", "idempotency_key": "seen"},
        {"job_type": "noop", "queue_name": "q2", "priority": 3},
        {"job_type": "noop", "idempotency_key": "twice"},
        {"job_type": "noop", "idempotency_key": "twice"},
    ]
    response = await client.post(f"{JOBS}/batch", json={"jobs": batch})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"created", "duplicates", "jobs"}
    assert all(set(item) == {"id", "status", "created"} for item in body["jobs"])
    assert (body["created"], body["duplicates"]) == (3, 2)
    flags = [item["created"] for item in body["jobs"]]
    assert flags == [True, False, True, True, False]
    ids = [item["id"] for item in body["jobs"]]
    assert {item["status"] for item in body["jobs"]} == {"pending"}
    assert ids[3] == ids[4]
    assert ids[0] < ids[2] < ids[3]
    jobs = [(await client.get(f"{JOBS}/{job_id}")).json() for job_id in ids]
    assert jobs[0]["job_type"] == "emails"
    assert jobs[0]["payload"] == SEED_JOB["payload"]
    assert (jobs[2]["queue_name"], jobs[2]["priority"]) == ("q2", 3)
    assert jobs[1]["idempotency_key"] == "seen"

    all_duplicates = await client.post(f"{JOBS}/batch", json={"jobs": batch[3:] + batch[1:2]})
    assert all_duplicates.status_code == 200
    assert all_duplicates.json() == {
        "created": 0,
        "duplicates": 3,
        "jobs": [
            {"id": ids[3], "status": "pending", "created": False},
            {"id": ids[3], "status": "pending", "created": False},
            {"id": ids[1], "status": "pending", "created": False},
        ],
    }


async def test_batch_is_one_transaction_and_names_the_bad_job(
    client: httpx.AsyncClient,
) -> None:
    batch = [{"job_type": "noop"}, {"job_type": "noop", "payload": {"bad": "nul\u0000"}}]
    response = await client.post(f"{JOBS}/batch", json={"jobs": batch})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "jobs", 1, "payload", "bad"]
    assert (await client.get(JOBS)).json()["jobs"] == []


async def test_batch_size_limit_comes_from_settings(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{JOBS}/batch", json={"jobs": [{"job_type": "noop"}] * 6})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "jobs"]
    assert "at most 5 jobs" in detail["msg"]
    empty = await client.post(f"{JOBS}/batch", json={"jobs": []})
    assert empty.status_code == 422


async def test_unknown_job_is_404_with_a_clear_message(client: httpx.AsyncClient) -> None:
    for path in (f"{JOBS}/424242", f"{JOBS}/424242/cancel", f"{JOBS}/424242/retry"):
        method = client.get if path.endswith("424242") else client.post
        response = await method(path)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "job 424242 not found"}


async def test_cancel_and_retry_follow_the_job_states(client: httpx.AsyncClient) -> None:
    job = (await client.post(JOBS, json={"job_type": "noop"})).json()
    retry_pending = await client.post(f"{JOBS}/{job['id']}/retry")
    assert retry_pending.status_code == 409
    assert retry_pending.json()["status"] == "pending"
    assert "cannot retry" in retry_pending.json()["detail"]

    cancelled = await client.post(f"{JOBS}/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None

    again = await client.post(f"{JOBS}/{job['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["status"] == "cancelled"

    retried = await client.post(f"{JOBS}/{job['id']}/retry")
    assert retried.status_code == 200
    assert retried.json()["status"] == "pending"
    assert retried.json()["finished_at"] is None


async def test_list_filters_and_pages_newest_first(client: httpx.AsyncClient) -> None:
    ids = []
    for index in range(7):
        body = {
            "job_type": "noop" if index % 2 else "emails",
            "payload": {} if index % 2 else SEED_JOB["payload"],
            "queue_name": f"q{index % 3}",
        }
        ids.append((await client.post(JOBS, json=body)).json()["id"])
    await client.post(f"{JOBS}/{ids[0]}/cancel")

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(JOBS, params=params)).json()
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)

    by_type = (await client.get(JOBS, params={"job_type": "noop"})).json()["jobs"]
    assert [j["id"] for j in by_type] == [ids[5], ids[3], ids[1]]
    by_queue = (await client.get(JOBS, params={"queue_name": "q0"})).json()["jobs"]
    assert [j["id"] for j in by_queue] == [ids[6], ids[3], ids[0]]
    cancelled = (await client.get(JOBS, params={"status": "cancelled"})).json()["jobs"]
    assert [j["id"] for j in cancelled] == [ids[0]]
    either = await client.get(f"{JOBS}?status=cancelled&status=pending&queue_name=q0")
    assert [j["id"] for j in either.json()["jobs"]] == [ids[6], ids[3], ids[0]]
    combined = await client.get(
        JOBS, params={"status": "pending", "queue_name": "q0", "job_type": "emails"}
    )
    assert [j["id"] for j in combined.json()["jobs"]] == [ids[6]]
