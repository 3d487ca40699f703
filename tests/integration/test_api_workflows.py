"""Workflows through the REST API on real PostgreSQL: depends_on and refs, on_complete and
GET /batches/{id}, wait_seconds woken by NOTIFY, and the bad input each one refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.integration.api_support import JOBS, api_client, api_settings
from tests.integration.queue_support import eventually, running_worker
from worker.api.app import create_app
from worker.handlers.base import HandlerRegistry, JobContext

BATCHES = "/api/v1/queue/batches"


@pytest.fixture
async def client(pg_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api_settings(pg_dsn, allow_unknown_job_types=True)) as c:
        yield c


def _registry() -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.register("echo")
    async def echo(payload: dict[str, Any], ctx: JobContext) -> Any:
        await asyncio.sleep(float(payload.get("seconds", 0)))
        return {"job": ctx.job_id}

    return registry


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def test_depends_on_blocks_and_names_a_missing_job(
    client: httpx.AsyncClient, pg_dsn: str
) -> None:
    first = (await client.post(JOBS, json={"job_type": "echo"})).json()
    second = await client.post(JOBS, json={"job_type": "echo", "depends_on": [first["id"]]})
    assert second.status_code == 201, second.text
    assert second.json()["status"] == "blocked"
    keyed = await client.post(
        JOBS, json={"job_type": "echo", "depends_on": [first["id"]], "concurrency_key": "t1"}
    )
    assert (
        await _count(
            pg_dsn,
            f"SELECT count(*) FROM jobs WHERE id = {keyed.json()['id']} AND concurrency_key = 't1'",
        )
        == 1
    )
    shown = (await client.get(f"{JOBS}/{second.json()['id']}")).json()
    assert shown["depends_on"] == [first["id"]]
    assert (await client.get(f"{JOBS}/{first['id']}")).json()["depends_on"] is None
    bad = await client.post(JOBS, json={"job_type": "echo", "depends_on": [first["id"], 424242]})
    assert bad.status_code == 422, bad.text
    (detail,) = bad.json()["detail"]
    assert detail["loc"] == ["body", "depends_on", 1]
    assert "424242" in detail["msg"] and "item 0" in detail["msg"]
    ref = await client.post(JOBS, json={"job_type": "echo", "depends_on": ["ref:a"]})
    assert ref.status_code == 422 and ref.json()["detail"][0]["loc"] == ["body", "depends_on", 0]
    assert await _count(pg_dsn, "SELECT count(*) FROM jobs") == 3


async def test_a_batch_with_refs_runs_in_order_and_calls_back(
    client: httpx.AsyncClient, pg_dsn: str
) -> None:
    body = {
        "jobs": [
            {"job_type": "echo", "ref": "extract"},
            {"job_type": "echo", "ref": "a", "depends_on": ["ref:extract"]},
            {"job_type": "echo", "ref": "b", "depends_on": ["ref:extract"]},
            {"job_type": "echo", "depends_on": ["ref:a", "ref:b"]},
        ],
        "on_complete": {"job_type": "echo", "payload": {"report": "nightly"}},
    }
    response = await client.post(f"{JOBS}/batch", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert [j["status"] for j in answer["jobs"]] == ["pending", "blocked", "blocked", "blocked"]
    batch_id = answer["batch_id"]
    shown = (await client.get(f"{BATCHES}/{batch_id}")).json()
    assert shown["total"] == 4 and shown["counts"] == {"pending": 1, "blocked": 3}
    assert shown["callback_job_id"] is None
    async with running_worker(pg_dsn, _registry()):

        async def called_back() -> Any:
            batch = (await client.get(f"{BATCHES}/{batch_id}")).json()
            return batch["callback_job_id"] and batch

        batch = await eventually(called_back, what="the batch's callback")
        callback = (
            await client.get(f"{JOBS}/{batch['callback_job_id']}", params={"wait_seconds": 30})
        ).json()
    assert callback["status"] == "completed"
    assert callback["payload"] == {
        "report": "nightly",
        "batch_id": batch_id,
        "counts": {"completed": 4},
    }
    ids = [j["id"] for j in answer["jobs"]]
    jobs = [(await client.get(f"{JOBS}/{i}")).json() for i in ids]
    assert jobs[1]["started_at"] >= jobs[0]["finished_at"]
    assert jobs[3]["started_at"] >= max(jobs[1]["finished_at"], jobs[2]["finished_at"])
    assert all(job["batch_id"] == batch_id for job in jobs)
    assert (await client.get(f"{BATCHES}/999999")).status_code == 404


@pytest.mark.parametrize(
    ("jobs", "loc", "word"),
    [
        (
            [
                {"job_type": "echo", "depends_on": ["ref:later"]},
                {"job_type": "echo", "ref": "later"},
            ],
            ["body", "jobs", 0, "depends_on", 0],
            "unknown ref",
        ),
        (
            [{"job_type": "echo", "ref": "x"}, {"job_type": "echo", "ref": "x"}],
            ["body", "jobs", 1, "ref"],
            "used twice",
        ),
        (
            [{"job_type": "echo", "ref": "x", "depends_on": ["ref:x"]}],
            ["body", "jobs", 0, "depends_on", 0],
            "unknown ref",
        ),
        (
            [{"job_type": "echo"}, {"job_type": "echo", "depends_on": [1, 77777]}],
            ["body", "jobs", 1, "depends_on", 1],
            "77777",
        ),
        (
            [{"job_type": "echo", "depends_on": ["extract"]}],
            ["body", "jobs", 0, "depends_on", 0],
            "ref:",
        ),
    ],
)
async def test_bad_refs_and_dependencies_are_422_and_write_nothing(
    client: httpx.AsyncClient, pg_dsn: str, jobs: list[dict[str, Any]], loc: list[Any], word: str
) -> None:
    await client.post(JOBS, json={"job_type": "echo"})  # job 1 exists
    response = await client.post(f"{JOBS}/batch", json={"jobs": jobs})
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    assert detail["loc"] == loc and word in detail["msg"]
    assert await _count(pg_dsn, "SELECT count(*) FROM jobs") == 1
    assert await _count(pg_dsn, "SELECT count(*) FROM batches") == 0


@pytest.mark.parametrize("seconds", ["-1", "60.5", "3600", "soon"])
async def test_wait_seconds_out_of_range_is_422(client: httpx.AsyncClient, seconds: str) -> None:
    job = (await client.post(JOBS, json={"job_type": "echo"})).json()
    response = await client.get(f"{JOBS}/{job['id']}", params={"wait_seconds": seconds})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "wait_seconds"]


async def test_wait_returns_the_current_state_when_time_is_up(client: httpx.AsyncClient) -> None:
    job = (await client.post(JOBS, json={"job_type": "echo", "delay_seconds": 3600})).json()
    waited = await client.get(f"{JOBS}/{job['id']}", params={"wait_seconds": 0.3})
    assert waited.status_code == 200 and waited.json()["status"] == "pending"
    missing = await client.get(f"{JOBS}/987654", params={"wait_seconds": 1})
    assert missing.status_code == 404


async def test_a_thousand_waiters_share_one_listening_connection(pg_dsn: str) -> None:
    settings = api_settings(pg_dsn, allow_unknown_job_types=True, api_pool_max=5)
    app = create_app(settings.api, settings.dsn)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                f"{JOBS}/batch", json={"jobs": [{"job_type": "echo"} for _ in range(100)]}
            )
            ids = [job["id"] for job in response.json()["jobs"]]
            waits = [
                asyncio.create_task(
                    client.get(f"{JOBS}/{ids[i % 100]}", params={"wait_seconds": 60})
                )
                for i in range(1000)
            ]
            waiters = app.state.api.waiters

            async def all_waiting() -> bool:
                return waiters.waiting == 1000

            await eventually(all_waiting, within=120, what="1000 waiting requests")
            connections = await _count(
                pg_dsn,
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            print(
                f"\n1000 waiters: {connections} database connections "
                "(pool max 5, LISTEN, the readers' pool's one)"
            )
            assert connections <= settings.api.api_pool_max + 2
            assert waiters.connections == 1
            async with running_worker(pg_dsn, _registry(), max_concurrent_jobs=10):
                answers = await asyncio.gather(*waits)
    assert {a.json()["status"] for a in answers} == {"completed"}


async def test_a_ref_outside_a_batch_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(JOBS, json={"job_type": "echo", "ref": "a"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "ref"]


# ------------------------------------------------------------------ docs/workflows.md
@pytest.mark.parametrize("name", ["chain", "batch", "progress"])
async def test_doc_examples_run_against_a_real_api(
    pg_dsn: str,
    tmp_path: Any,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.fixtures.doc_examples import example
    from tests.integration.api_support import api_process
    from worker.handlers import registry as builtin

    code = example("docs/workflows.md", name).code
    with api_process(pg_dsn, tmp_path / "api.log") as api:
        monkeypatch.setenv("API", api.url)
        async with running_worker(pg_dsn, builtin, reports_dir=str(tmp_path / "reports")):
            # the example blocks on HTTP: run it off the loop the worker runs on
            await asyncio.to_thread(exec, compile(code, "docs/workflows.md", "exec"), {})
    out = capsys.readouterr().out.split("\n")
    expected = {
        "chain": ["blocked", "completed"],
        "batch": ["['pending', 'pending', 'blocked']"],
        "progress": ["completed 1.0 wrote sales-job1.csv"],
    }[name]
    assert out[: len(expected)] == expected


async def test_a_dependent_job_with_a_repeated_key_returns_the_first(
    client: httpx.AsyncClient,
) -> None:
    first = (await client.post(JOBS, json={"job_type": "echo"})).json()
    body = {"job_type": "echo", "depends_on": [first["id"]], "idempotency_key": "k-1"}
    created = await client.post(JOBS, json=body)
    again = await client.post(JOBS, json=body)
    assert (created.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == created.json()["id"]


async def test_the_callback_spec_is_checked_like_a_job(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as strict:
        response = await strict.post(
            f"{JOBS}/batch",
            json={"jobs": [{"job_type": "noop"}], "on_complete": {"job_type": "nope"}},
        )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "on_complete", "job_type"]
    assert await _count(pg_dsn, "SELECT count(*) FROM jobs") == 0


async def test_unique_keys_hold_on_dependent_jobs_and_batch_items(
    client: httpx.AsyncClient,
) -> None:
    """unique_key on a job with depends_on, or on a workflow batch's item, is kept (it was once
    dropped on this path): an active job, blocked ones included, holds the key."""
    root = (await client.post(JOBS, json={"job_type": "echo"})).json()
    dependent = await client.post(
        JOBS, json={"job_type": "echo", "depends_on": [root["id"]], "unique_key": "report:7"}
    )
    assert dependent.status_code == 201, dependent.text
    assert (dependent.json()["status"], dependent.json()["unique_key"]) == ("blocked", "report:7")
    # the blocked job holds the key against a plain enqueue, a dependent one and a batch item
    plain = await client.post(JOBS, json={"job_type": "echo", "unique_key": "report:7"})
    assert (plain.status_code, plain.json()["id"]) == (200, dependent.json()["id"])
    again = await client.post(
        JOBS, json={"job_type": "echo", "depends_on": [root["id"]], "unique_key": "report:7"}
    )
    assert (again.status_code, again.json()["id"]) == (200, dependent.json()["id"])
    batch = await client.post(
        f"{JOBS}/batch",
        json={
            "jobs": [
                {"job_type": "echo", "ref": "a", "unique_key": "report:7"},
                {"job_type": "echo", "depends_on": ["ref:a"], "unique_key": "report:8"},
                {"job_type": "echo", "depends_on": ["ref:a"], "unique_key": "report:8"},
            ]
        },
    )
    assert batch.status_code == 201, batch.text
    jobs = batch.json()["jobs"]
    assert [job["created"] for job in jobs] == [False, True, False]
    assert jobs[0]["id"] == dependent.json()["id"]
    assert jobs[2]["id"] == jobs[1]["id"] and jobs[1]["status"] == "blocked"
    shown = (await client.get(f"{JOBS}/{jobs[1]['id']}")).json()
    assert shown["unique_key"] == "report:8"
