"""Findings 12 and 13 over HTTP: queue names are checked (422 naming queue_name), and the API
reads the same everywhere: depends_on in lists as in GET /jobs/{id}, no stale last_error after
a retry, every 413 in JSON, a clear 415 for a body that is not declared JSON, and /queues
naming each queue once. The requests a user sends go to a real `jobqueue api` process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.integration.api_support import JOBS, api_client, api_process, api_settings
from tests.integration.queue_support import eventually, running_worker
from worker.handlers.base import HandlerRegistry, PermanentError

BAD_NAME = "my queue/../x"


async def test_queue_names_are_checked_where_a_queue_is_named(pg_dsn: str, tmp_path: Path) -> None:
    with api_process(pg_dsn, tmp_path / "api.log") as api:
        async with httpx.AsyncClient(base_url=api.url) as client:
            await _queue_names_checked(client)


async def _queue_names_checked(client: httpx.AsyncClient) -> None:
    one = await client.post(JOBS, json={"job_type": "noop", "queue_name": BAD_NAME})
    batch = await client.post(
        f"{JOBS}/batch", json={"jobs": [{"job_type": "noop", "queue_name": "x" * 129}]}
    )
    schedule = await client.post(
        "/api/v1/queue/schedules",
        json={
            "name": "s",
            "every_seconds": 60,
            "job": {"job_type": "noop", "queue_name": "a b"},
        },
    )
    pause = await client.post("/api/v1/queue/queues/bad%20name/pause")
    fine = await client.post(JOBS, json={"job_type": "noop", "queue_name": "emails.eu-1:hi"})
    assert one.status_code == 422, one.text
    (error,) = one.json()["detail"]
    assert error["loc"] == ["body", "queue_name"]
    assert "letters, digits, '_', '-', '.' or ':'" in error["msg"] and BAD_NAME in error["msg"]
    assert batch.status_code == 422
    assert batch.json()["detail"][0]["loc"] == ["body", "jobs", 0, "queue_name"]
    assert schedule.status_code == 422
    assert schedule.json()["detail"][0]["loc"] == ["body", "job", "queue_name"]
    assert pause.status_code == 422 and pause.json()["detail"][0]["loc"] == ["path", "name"]
    assert fine.status_code == 201


def _registry() -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.register("fh_root")
    async def root(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
        if payload.get("fail"):
            raise PermanentError("the root fails")
        return {}

    return registry


async def test_a_job_reads_the_same_in_a_list_and_after_a_retry(pg_dsn: str) -> None:
    settings = api_settings(pg_dsn, allow_unknown_job_types=True)
    async with api_client(settings) as client, running_worker(pg_dsn, _registry()):
        root = await client.post(JOBS, json={"job_type": "fh_root", "payload": {"fail": True}})
        root_id = root.json()["id"]
        child = await client.post(JOBS, json={"job_type": "fh_root", "depends_on": [root_id]})
        child_id = child.json()["id"]

        async def cancelled() -> Any:
            job = (await client.get(f"{JOBS}/{child_id}")).json()
            return job if job["status"] == "cancelled" else None

        alone = await eventually(cancelled, what="the child to be cancelled with its root")
        listed = (await client.get(JOBS, params={"status": "cancelled"})).json()["jobs"]
        assert [job["depends_on"] for job in listed] == [[root_id]] == [alone["depends_on"]]
        assert alone["last_error"] == f"cancelled: its dependency job {root_id} failed"

        retried = (await client.post(f"{JOBS}/{child_id}/retry")).json()
        assert retried["status"] == "pending" and retried["last_error"] is None
        done = (await client.get(f"{JOBS}/{child_id}", params={"wait_seconds": 30})).json()
    assert done["status"] == "completed" and done["last_error"] is None


async def test_errors_are_json_and_name_what_to_send(pg_dsn: str, tmp_path: Path) -> None:
    limits = {"JOBQUEUE_API_MAX_PAYLOAD_BYTES": "1000", "JOBQUEUE_API_MAX_BATCH_BYTES": "100000"}
    with api_process(pg_dsn, tmp_path / "api.log", **limits) as api:
        async with httpx.AsyncClient(base_url=api.url) as client:
            await _errors_named(client)


async def _errors_named(client: httpx.AsyncClient) -> None:
    big = b'{"job_type": "noop", "payload": {"x": "' + b"a" * 300_000 + b'"}}'
    answers = [
        await client.post(JOBS, content=big, headers={"Content-Type": "application/json"}),
        await client.post(
            f"{JOBS}/batch", content=big, headers={"Content-Type": "application/json"}
        ),
        await client.post(JOBS, json={"job_type": "noop", "payload": {"x": "a" * 2000}}),
    ]
    bare = await client.post(JOBS, content=b'{"job_type": "noop"}')
    form = await client.post(
        JOBS,
        content=b'{"job_type": "noop"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    queues = (await client.get("/api/v1/queue/queues")).json()["queues"]
    for answer in answers:
        assert answer.status_code == 413
        assert answer.headers["content-type"] == "application/json", answer.text
        assert "limit" in str(answer.json()["detail"])
    for refused, kind in ((bare, "none"), (form, "application/x-www-form-urlencoded")):
        assert refused.status_code == 415, refused.text
        (error,) = refused.json()["detail"]
        assert error["loc"] == ["header", "content-type"]
        assert "send 'Content-Type: application/json'" in error["msg"] and kind in error["msg"]
    assert all("name" in q and "queue_name" not in q for q in queues)
