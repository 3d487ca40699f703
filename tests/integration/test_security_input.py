"""The smaller findings of the security review, on real PostgreSQL through the API: a reused
idempotency key, the scheduler's keys, schedules' interval and number, and metric labels."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.api_support import JOBS, SEED_JOB, api_client, api_settings

SCHEDULES = "/api/v1/queue/schedules"


@pytest.fixture
async def client(pg_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings(pg_dsn, max_schedules=3, metrics_max_queues=5)
    async with api_client(settings) as c:
        yield c


def loc(response: httpx.Response) -> list[object]:
    return list(response.json()["detail"][0]["loc"])


async def count_jobs(client: httpx.AsyncClient) -> int:
    return len((await client.get(JOBS, params={"limit": 1000})).json()["jobs"])


@pytest.mark.parametrize(
    "change",
    [
        {"payload": {**SEED_JOB["payload"], "to": "attacker@example.com"}},
        {"job_type": "noop", "payload": {}},
        {"queue_name": "other"},
    ],
)
async def test_a_key_reused_for_another_job_is_a_conflict(
    client: httpx.AsyncClient, change: dict[str, object]
) -> None:
    body = {**SEED_JOB, "idempotency_key": "signup-7"}
    first = await client.post(JOBS, json=body)
    assert first.status_code == 201
    again = await client.post(JOBS, json={**body, **change})
    assert again.status_code == 409, again.text
    assert loc(again) == ["body", "idempotency_key"]
    assert "signup-7" in again.json()["detail"][0]["msg"]
    # the same job again is still the first one, and nothing else was made
    same = await client.post(JOBS, json=body)
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    assert await count_jobs(client) == 1


async def test_a_batch_with_a_conflicting_key_makes_nothing(client: httpx.AsyncClient) -> None:
    await client.post(JOBS, json={"job_type": "noop", "idempotency_key": "k1"})
    jobs = [
        {"job_type": "noop", "idempotency_key": "new"},
        {"job_type": "noop", "idempotency_key": "k1", "payload": {"n": 2}},
    ]
    refused = await client.post(f"{JOBS}/batch", json={"jobs": jobs})
    assert refused.status_code == 409, refused.text
    assert loc(refused) == ["body", "jobs", 1, "idempotency_key"]
    # two items of one batch that share a key must be the same job too
    inside = await client.post(
        f"{JOBS}/batch",
        json={"jobs": [{"job_type": "noop", "idempotency_key": "twin"},
                       {"job_type": "noop", "idempotency_key": "twin", "priority": 3,
                        "payload": {"other": True}}]},
    )  # fmt: skip
    assert inside.status_code == 409 and loc(inside) == ["body", "jobs", 1, "idempotency_key"]
    # with a callback (a tracked workflow batch) as well
    workflow = await client.post(
        f"{JOBS}/batch", json={"jobs": jobs, "on_complete": {"job_type": "noop"}}
    )
    assert workflow.status_code == 409 and loc(workflow) == ["body", "jobs", 1, "idempotency_key"]
    assert await count_jobs(client) == 1, "the refused batches left nothing behind"
    # a batch that repeats the first job exactly still answers it
    repeat = await client.post(
        f"{JOBS}/batch", json={"jobs": [jobs[0], {**jobs[1], "payload": {}}]}
    )
    assert repeat.status_code == 201


async def test_the_schedulers_keys_cannot_be_taken(client: httpx.AsyncClient) -> None:
    forged = {"job_type": "noop", "idempotency_key": "schedule:nightly:2030-01-01T02:00:00+00:00"}
    for response in (
        await client.post(JOBS, json=forged),
        await client.post(f"{JOBS}/batch", json={"jobs": [forged]}),
        await client.post(JOBS, json={**forged, "depends_on": []}),
    ):
        assert response.status_code == 422, response.text
        assert loc(response)[-1] == "idempotency_key"
    assert await count_jobs(client) == 0


async def test_schedules_fire_at_most_every_second(client: httpx.AsyncClient) -> None:
    job = {"job_type": "noop"}
    for every in (0.01, 0.5, 0.999):
        refused = await client.post(
            SCHEDULES, json={"name": "fast", "every_seconds": every, "job": job}
        )
        assert refused.status_code == 422, every
        assert loc(refused) == ["body", "every_seconds"]
    made = await client.post(SCHEDULES, json={"name": "fast", "every_seconds": 1, "job": job})
    assert made.status_code == 201


async def test_the_number_of_schedules_is_capped(client: httpx.AsyncClient) -> None:
    job = {"job_type": "noop"}
    for n in range(3):
        made = await client.post(SCHEDULES, json={"name": f"s{n}", "every_seconds": 60, "job": job})
        assert made.status_code == 201
    refused = await client.post(SCHEDULES, json={"name": "s3", "every_seconds": 60, "job": job})
    assert refused.status_code == 422
    assert loc(refused) == ["body", "name"] and "JOBQUEUE_MAX_SCHEDULES" in refused.text
    # replacing one by its name is no new schedule
    replaced = await client.post(SCHEDULES, json={"name": "s1", "every_seconds": 30, "job": job})
    assert replaced.status_code == 200


async def test_metric_labels_stay_bounded(client: httpx.AsyncClient) -> None:
    for n in range(20):
        assert (
            await client.post(JOBS, json={"job_type": "noop", "queue_name": f"q{n}"})
        ).is_success
    await client.request("BREW", "/api/v1/queue/jobs")
    text = (await client.get("/metrics")).text
    labelled = {
        line.split('queue_name="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("jobqueue_api_jobs_enqueued_total{")
    }
    assert len(labelled) == 6 and "_other" in labelled, labelled
    assert 'method="BREW"' not in text and 'method="OTHER"' in text
