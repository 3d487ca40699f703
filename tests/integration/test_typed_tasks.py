"""Typed tasks end to end, from the user's entry points: `task.enqueue` on each driver inside the
caller's transaction, `jobqueue worker` processes running them, and the same model refusing a
bad payload at every door: InvalidJob in Python (the same whatever the driver), a 422 from the
API process, one line from the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import jobqueue
from tests.integration.api_support import api_process
from tests.integration.firsthour_support import cli_json
from tests.integration.queue_support import REPO, eventually, fetch
from tests.integration.test_clients import DRIVERS, Rollback
from tests.integration.typed_tasks import Resize, Shout, mumble, resize, shout

TASKS = "tests.integration.typed_tasks"


async def _jobs(dsn: str) -> list[Any]:
    return await fetch(dsn, "SELECT id, job_type, status::text AS status, result FROM jobs")


@pytest.mark.parametrize("driver", DRIVERS)
async def test_tasks_enqueue_in_the_callers_transaction_and_a_worker_runs_them(
    pg_dsn: str, driver: str, workers: Any
) -> None:
    async with DRIVERS[driver](pg_dsn) as (conn, transaction):
        with pytest.raises(Rollback):
            async with transaction():
                await resize.enqueue(conn, Resize(path="gone.png", width=10))
                raise Rollback
        assert await _jobs(pg_dsn) == []
        async with transaction():
            one = await resize.enqueue(conn, Resize(path="a.png", width=64), priority=5)
            many = await resize.enqueue_many(
                conn,
                [
                    Resize(path="b.png", width=32),
                    {"path": "c.png", "width": 16},
                    resize.prepare(Resize(path="d.png", width=8), queue_name="other"),
                ],
            )
            held = await resize.enqueue(conn, Resize(path="e.png", width=1), unique_key="e")
            again = await resize.enqueue(conn, Resize(path="e.png", width=2), unique_key="e")
    assert again == held and many == sorted(many) and one < many[0]
    rows = {r["id"]: r for r in await fetch(pg_dsn, "SELECT * FROM jobs")}
    assert (rows[one]["priority"], rows[one]["max_tries"]) == (5, 2)  # the task's default
    assert rows[many[2]]["queue_name"] == "other" and rows[held]["unique_key"] == "e"

    workers(pg_dsn, JOBQUEUE_HANDLER_MODULES=TASKS, WORKER_QUEUES="default,other")

    async def done() -> bool:
        return {r["status"] for r in await _jobs(pg_dsn)} == {"completed"}

    await eventually(done, what="the typed jobs to complete")
    results = {r["id"]: json.loads(r["result"]) for r in await _jobs(pg_dsn)}
    assert results[one] == {"path": "a.png", "width": 64, "queue": "default"}
    assert results[many[2]] == {"path": "d.png", "width": 8, "queue": "other"}


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_refused_job_is_the_same_invalid_job_on_every_driver(
    pg_dsn: str, driver: str
) -> None:
    async with DRIVERS[driver](pg_dsn) as (conn, transaction):
        cases = [
            # the Python rules refuse these before anything is sent
            (lambda: resize.enqueue(conn, {"path": "a", "width": 0}), "payload.width"),
            (lambda: resize.enqueue(conn, Resize(path="a", width=1), max_tries=0), "max_tries"),
            (lambda: jobqueue.enqueue(conn, "noop", {}, unique_key=""), "unique_key"),
            # and the SQL function this one, read back as the same error
            (lambda: jobqueue.enqueue(conn, "noop", {}, depends_on=[4242]), "depends_on"),
        ]
        for call, field in cases:
            with pytest.raises(jobqueue.InvalidJob) as caught:
                async with transaction():
                    await call()
            assert caught.value.field == field, caught.value
    assert await _jobs(pg_dsn) == []


async def test_a_plain_def_task_runs_in_a_worker(pg_dsn: str, workers: Any) -> None:
    async with DRIVERS["asyncpg"](pg_dsn) as (conn, _):
        job_id = await shout.enqueue(conn, Shout("hello"))
        failing = await mumble.enqueue(conn, Shout("x"))
    workers(pg_dsn, JOBQUEUE_HANDLER_MODULES=TASKS)

    async def done() -> bool:
        return sorted(r["status"] for r in await _jobs(pg_dsn)) == ["completed", "failed"]

    await eventually(done, what="the sync tasks to finish")
    # as users read them: `jobqueue jobs get` answers as GET /jobs/{id} does
    shown = cli_json(pg_dsn, "jobs", "get", str(job_id))
    assert (shown["status"], shown["result"], shown["errors"]) == (
        "completed",
        {"text": "HELLO"},
        [],
    )
    assert [(x["level"], x["message"]) for x in shown["logs"]] == [
        ("INFO", "shouting in jobqueue-handler")
    ]
    [error] = cli_json(pg_dsn, "jobs", "get", str(failing))["errors"]
    assert error["error"] == "LookupError: cannot mumble 'x'"
    # the traceback starts at the user's function: no thread pool's or adapter's frames
    first = error["traceback"].splitlines()[1]
    assert first.endswith("in mumble") and "typed_tasks.py" in first, error["traceback"]


def test_the_api_refuses_a_payload_that_fails_the_tasks_model(pg_dsn: str, tmp_path: Path) -> None:
    env = {"JOBQUEUE_HANDLER_MODULES": TASKS, "PYTHONPATH": str(REPO)}
    with api_process(pg_dsn, tmp_path / "api.log", **env) as api:
        url = f"{api.url}/api/v1/queue/jobs"
        bad = httpx.post(url, json={"job_type": "resize", "payload": {"path": "a", "width": 0}})
        assert bad.status_code == 422, bad.text
        [detail] = bad.json()["detail"]
        assert detail["loc"] == ["body", "payload", "width"]
        assert "greater than 0" in detail["msg"]
        good = httpx.post(url, json={"job_type": "resize", "payload": {"path": "a", "width": 5}})
        assert good.status_code == 201, good.text


def test_the_cli_refuses_it_in_one_line(pg_dsn: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jobqueue", "enqueue", "resize", "--payload", '{"path": "a"}'],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "DB_URL": pg_dsn, "JOBQUEUE_HANDLER_MODULES": TASKS},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: --payload.width: resize: Field required"]
    assert asyncio.run(_jobs(pg_dsn)) == []
