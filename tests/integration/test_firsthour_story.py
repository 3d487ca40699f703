"""Findings 2 and 11: every attempt keeps its story. A failing handler's errors and tracebacks,
one per attempt, and its ctx.logger lines, come back from GET /jobs/{id} (a real API process)
and `jobqueue jobs get`; the worker's own log has every failed attempt with its traceback, and
starts and completions when asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.integration.api_support import JOBS, api_process
from tests.integration.firsthour_support import cli, cli_json, handler_env
from tests.integration.queue_support import eventually

JOB_LOG_CAP_BYTES = 64 * 1024  # worker.db.attempts: what a job keeps of its log lines


def _enqueue(api: str, job_type: str, **fields: Any) -> int:
    response = httpx.post(api + JOBS, json={"job_type": job_type, **fields}, timeout=10)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _terminal(api: str, job_id: int) -> dict[str, Any]:
    answer = httpx.get(f"{api}{JOBS}/{job_id}", params={"wait_seconds": 30}, timeout=40)
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["status"] in ("completed", "failed"), job
    return job


async def test_each_failed_attempt_keeps_its_error_traceback_and_log_lines(
    pg_dsn: str, workers: Any, tmp_path: Path
) -> None:
    log = tmp_path / "worker-0.log"
    workers(pg_dsn, **handler_env())
    with api_process(pg_dsn, tmp_path / "api.log", **handler_env()) as api:
        job_id = _enqueue(api.url, "fh_fail", max_tries=3)
        job = _terminal(api.url, job_id)
    assert job["status"] == "failed" and job["last_error"] == "KeyError: 'missing_key'"
    assert [e["attempt"] for e in job["errors"]] == [3, 2, 1]  # newest first
    for error in job["errors"]:
        assert error["error"] == "KeyError: 'missing_key'"
        trace = error["traceback"]
        assert trace.startswith("Traceback (most recent call last):")
        assert "firsthour_handlers.py" in trace and "in _lookup" in trace
        assert 'return payload["missing_key"]' in trace
        assert trace.endswith("KeyError: 'missing_key'")
        assert "worker/runtime" not in trace  # the runtime's own frames say nothing
    assert [(line["attempt"], line["level"], line["message"]) for line in job["logs"]] == [
        (n, "INFO", f"looking up the key, attempt {n}") for n in (1, 2, 3)
    ]

    # the worker's log: every attempt, what comes next, and the traceback
    text = log.read_text()
    assert f"job {job_id} (fh_fail) attempt 1/3 failed, will retry in" in text
    assert f"job {job_id} (fh_fail) attempt 3/3 failed for good: KeyError: 'missing_key'" in text
    assert text.count('return payload["missing_key"]') >= 3

    # and the CLI shows the same story
    shown = cli(pg_dsn, "jobs", "get", str(job_id))
    assert shown.returncode == 0, shown.stderr
    assert "errors (3, newest first)" in shown.stdout
    assert 'return payload["missing_key"]' in shown.stdout
    assert "looking up the key, attempt 2" in shown.stdout
    as_json = cli_json(pg_dsn, "jobs", "get", str(job_id))
    assert [(e["attempt"], e["traceback"]) for e in as_json["errors"]] == [
        (e["attempt"], e["traceback"]) for e in job["errors"]
    ]


async def test_a_def_handler_failure_keeps_its_traceback_too(
    pg_dsn: str, workers: Any, tmp_path: Path
) -> None:
    workers(pg_dsn, **handler_env())
    with api_process(pg_dsn, tmp_path / "api.log", **handler_env()) as api:
        job = _terminal(api.url, _enqueue(api.url, "fh_sync_fail", max_tries=1))
    (error,) = job["errors"]
    assert "in sync_failing" in error["traceback"] and "in _lookup" in error["traceback"]
    assert [(line["level"], line["message"]) for line in job["logs"]] == [
        ("WARNING", "about to fail in a thread")
    ]


async def test_log_lines_are_capped_per_job_and_say_what_went(
    pg_dsn: str, workers: Any, tmp_path: Path
) -> None:
    workers(pg_dsn, **handler_env())
    with api_process(pg_dsn, tmp_path / "api.log", **handler_env()) as api:
        job_id = _enqueue(api.url, "fh_chatty", payload={"lines": 2000, "width": 100})
        job = _terminal(api.url, job_id)
    assert job["status"] == "completed" and job["errors"] == []
    kept, last = job["logs"][:-1], job["logs"][-1]
    size = sum(len(line["message"].encode()) for line in kept)
    assert JOB_LOG_CAP_BYTES - 120 < size <= JOB_LOG_CAP_BYTES
    assert kept[0]["message"].startswith("line 0 ")
    assert last["level"] == "WARNING"
    assert last["message"] == (
        f"{2000 - len(kept)} more lines not kept: a job keeps at most "
        f"{JOB_LOG_CAP_BYTES} bytes of log lines"
    )


async def test_starts_and_completions_are_logged_at_info_when_asked(
    pg_dsn: str, workers: Any, tmp_path: Path
) -> None:
    log = tmp_path / "worker-0.log"
    workers(pg_dsn, JOBQUEUE_LOG_JOBS="true", **handler_env())
    created = cli_json(pg_dsn, "enqueue", "noop", "--wait", "30")
    assert created["status"] == "completed"

    async def logged() -> bool:
        text = log.read_text()
        return f"job {created['id']} (noop) attempt 1 completed in" in text

    await eventually(logged, what="the completion's log line")
    assert f"INFO worker.runtime.loop: job {created['id']} (noop) attempt 1/3 started" in (
        log.read_text()
    )
    body = json.loads(cli(pg_dsn, "jobs", "get", str(created["id"]), "--json").stdout)
    assert body["logs"] == [] and body["errors"] == []
