"""The `jobqueue` CLI as users run it (a subprocess reading DB_URL), against real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process
from tests.fixtures.tools import REPO_ROOT


def jobqueue(dsn: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={**os.environ, "DB_URL": dsn, "COLUMNS": "200", **env},
    )


def ok_json(dsn: str, *args: str) -> Any:
    result = jobqueue(dsn, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def flat(text: str) -> str:
    """Rich may box and wrap error text: keep only the words."""
    return " ".join(text.replace("│", " ").split())


def test_enqueue_then_get_list_cancel_and_retry(pg_dsn: str) -> None:
    payload = {"to": "user@example.com", "subject": "Hi", "body": "Hello"}
    created = ok_json(
        pg_dsn, "enqueue", "emails", "--payload", json.dumps(payload), "-q", "mail", "-p", "7"
    )
    assert created["created"] is True and created["status"] == "pending"
    job_id = str(created["id"])

    shown = ok_json(pg_dsn, "jobs", "get", job_id)
    assert shown["payload"] == payload
    assert (shown["queue_name"], shown["priority"], shown["max_tries"]) == ("mail", 7, 3)
    assert "mail" in jobqueue(pg_dsn, "jobs", "get", job_id).stdout

    ok_json(pg_dsn, "enqueue", "noop")
    listed = ok_json(pg_dsn, "jobs", "list", "--queue", "mail")
    assert [job["id"] for job in listed] == [created["id"]]
    table = jobqueue(pg_dsn, "jobs", "list", "--status", "pending")
    assert table.returncode == 0 and "emails" in table.stdout and "noop" in table.stdout

    cancelled = jobqueue(pg_dsn, "jobs", "cancel", job_id)
    assert cancelled.returncode == 0 and f"job {job_id} is now cancelled" in cancelled.stdout
    assert ok_json(pg_dsn, "jobs", "list", "--status", "cancelled")[0]["id"] == created["id"]
    again = jobqueue(pg_dsn, "jobs", "cancel", job_id)
    assert again.returncode == 1 and f"cannot cancel job {job_id}: it is cancelled" in again.stderr
    retried = jobqueue(pg_dsn, "jobs", "retry", job_id)
    assert retried.returncode == 0 and "is now pending" in retried.stdout

    missing = jobqueue(pg_dsn, "jobs", "get", "987654")
    assert missing.returncode == 1 and "job 987654 not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_idempotency_key_returns_the_first_job(pg_dsn: str) -> None:
    first = ok_json(pg_dsn, "enqueue", "noop", "--idempotency-key", "nightly")
    second = ok_json(pg_dsn, "enqueue", "noop", "--idempotency-key", "nightly")
    assert (second["id"], second["created"]) == (first["id"], False)


def test_bulk_enqueue_in_chunks(pg_dsn: str) -> None:
    result = jobqueue(pg_dsn, "enqueue", "noop", "--count", "2345", "-q", "bulk", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["count"] == 2345
    assert summary["last_id"] - summary["first_id"] == 2344
    stats = ok_json(pg_dsn, "stats")
    assert stats["by_status"]["pending"] == {"count": 2345, "kind": "exact"}
    (queue,) = stats["queues"]["queues"]
    assert queue["queue_name"] == "bulk" and queue["ready"]["count"] == 2345
    text = jobqueue(pg_dsn, "stats")
    assert text.returncode == 0 and "bulk" in text.stdout and "2345" in text.stdout


def test_stats_and_workers_follow_a_real_worker(pg_dsn: str, tmp_path: Path) -> None:
    assert jobqueue(pg_dsn, "workers").stdout.strip() == "no live workers"
    env = {
        **os.environ,
        "DB_URL": pg_dsn,
        "JOBQUEUE_WORKER_NAME": "cli-test-worker",
        "JOBQUEUE_WORKER_PORT": "0",
        "WORKER_QUEUES": "default,other",
    }
    log = tmp_path / "worker.log"
    proc = start_logged([sys.executable, "-m", "worker", "worker"], log, env=env, cwd=REPO_ROOT)
    try:
        for _ in range(600):
            live = ok_json(pg_dsn, "workers")
            if live or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert live, log_tail(log)
        (worker,) = live
        assert worker["name"] == "cli-test-worker"
        assert worker["queues"] == ["default", "other"] and worker["concurrency"] == 3
        assert "cli-test-worker" in jobqueue(pg_dsn, "workers").stdout

        job_id = str(ok_json(pg_dsn, "enqueue", "noop", "-n", "1")["id"])
        for _ in range(600):
            if ok_json(pg_dsn, "jobs", "get", job_id)["status"] == "completed":
                break
            time.sleep(0.1)
        done = ok_json(pg_dsn, "jobs", "get", job_id)
        assert done["status"] == "completed" and done["worker_id"] == worker["id"]
        stats = ok_json(pg_dsn, "stats")
        assert stats["by_status"]["completed"]["count"] == 1
        assert stats["done_last_minute"]["count"] == 1
    finally:
        stop_process(proc)
    assert proc.returncode == 0, log_tail(log)
    assert jobqueue(pg_dsn, "workers").stdout.strip() == "no live workers"


def test_bad_input_names_the_option(pg_dsn: str) -> None:
    broken = jobqueue(pg_dsn, "enqueue", "noop", "--payload", "{to: 1}")
    assert broken.returncode == 2
    assert "Invalid value for '--payload': not valid JSON" in flat(broken.stderr)
    not_object = jobqueue(pg_dsn, "enqueue", "noop", "--payload", "[1, 2]")
    assert not_object.returncode == 2 and "must be a JSON object" in flat(not_object.stderr)
    not_finite = jobqueue(pg_dsn, "enqueue", "noop", "--payload", '{"x": NaN}')
    assert not_finite.returncode == 1 and "--payload.x: numbers must be finite" in not_finite.stderr
    unknown = jobqueue(pg_dsn, "enqueue", "no_such_type")
    assert unknown.returncode == 1
    assert "unknown job_type 'no_such_type'; known types: emails" in unknown.stderr
    status = jobqueue(pg_dsn, "jobs", "list", "--status", "done")
    assert status.returncode == 2 and "'done' is not one of pending" in flat(status.stderr)
    for result in (broken, not_object, not_finite, unknown, status):
        assert "Traceback" not in result.stderr
    assert ok_json(pg_dsn, "jobs", "list") == []  # nothing got in


def test_unreachable_database_names_host_and_port_and_what_to_check() -> None:
    port = free_port()  # nothing listens here
    dsn = f"postgresql://postgres@127.0.0.1:{port}/jobqueue"
    commands = [
        ["stats"],
        ["workers"],
        ["jobs", "list"],
        ["jobs", "get", "1"],
        ["jobs", "cancel", "1"],
        ["enqueue", "noop"],
        ["enqueue", "noop", "--count", "10"],
        ["migrate"],
    ]
    for args in commands:
        result = jobqueue(dsn, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        message = flat(result.stderr)
        assert f"cannot reach PostgreSQL at 127.0.0.1:{port}/jobqueue" in message, (args, message)
        assert "Check that the server is running" in message
        assert "Traceback" not in result.stderr and not result.stdout.strip()


def test_missing_schema_and_bad_settings_are_explained(pg_dsn_empty: str) -> None:
    bare = jobqueue(pg_dsn_empty, "stats")
    assert bare.returncode == 1 and "run `jobqueue migrate`" in bare.stderr
    wrong_scheme = jobqueue("mysql://root@localhost/db", "stats")
    assert wrong_scheme.returncode == 1
    assert "DB_URL" in wrong_scheme.stderr and "postgresql://" in wrong_scheme.stderr
    for result in (bare, wrong_scheme):
        assert "Traceback" not in result.stderr


def _broken_handlers(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "broken_handlers.py").write_text("raise RuntimeError('handler module exploded')\n")
    return {"JOBQUEUE_HANDLER_MODULES": "broken_handlers", "PYTHONPATH": str(tmp_path)}


def test_an_unknown_exception_is_one_line_with_the_hint(pg_dsn: str, tmp_path: Path) -> None:
    result = jobqueue(pg_dsn, "worker", **_broken_handlers(tmp_path), DEBUG="false")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: unexpected RuntimeError: handler module exploded "
        "(set DEBUG=true to log the traceback)"
    ], result.stderr
    assert "Traceback" not in result.stderr and "╭" not in result.stderr, result.stderr


def test_debug_shows_the_plain_traceback(pg_dsn: str, tmp_path: Path) -> None:
    result = jobqueue(pg_dsn, "worker", **_broken_handlers(tmp_path), DEBUG="true")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr, result.stderr
    assert "RuntimeError: handler module exploded" in result.stderr
