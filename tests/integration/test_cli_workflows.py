"""`jobqueue enqueue --depends-on / --run-on-failure / --unique-key / --wait`, as users run it
(a subprocess reading DB_URL), against real PostgreSQL and a real worker process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.processes import stop_process
from tests.integration.queue_support import start_worker_process
from tests.integration.test_cli import flat, jobqueue, ok_json


def test_depends_on_blocks_and_a_count_fans_out(pg_dsn: str) -> None:
    root = ok_json(pg_dsn, "enqueue", "noop", "--delay", "3600")
    child = ok_json(pg_dsn, "enqueue", "noop", "--depends-on", str(root["id"]))
    assert (child["status"], child["created"]) == ("blocked", True)
    text = jobqueue(pg_dsn, "enqueue", "noop", "--depends-on", str(root["id"]))
    assert text.returncode == 0 and f"blocked until {root['id']} finish" in text.stdout
    fan = ok_json(pg_dsn, "enqueue", "noop", "--depends-on", str(root["id"]), "--count", "50")
    assert fan["count"] == 50 and fan["last_id"] - fan["first_id"] == 49
    blocked = ok_json(pg_dsn, "jobs", "list", "--status", "blocked", "--limit", "100")
    assert len(blocked) == 52
    cancelled = jobqueue(pg_dsn, "jobs", "cancel", str(root["id"]))
    assert cancelled.returncode == 0, cancelled.stderr
    shown = ok_json(pg_dsn, "jobs", "get", str(child["id"]))
    assert shown["status"] == "cancelled"
    assert shown["last_error"] == f"cancelled: its dependency job {root['id']} cancelled"


def test_unique_key_holds_and_bad_flags_name_themselves(pg_dsn: str) -> None:
    first = ok_json(pg_dsn, "enqueue", "noop", "--unique-key", "nightly", "--delay", "60")
    again = ok_json(pg_dsn, "enqueue", "noop", "--unique-key", "nightly")
    assert (again["id"], again["created"]) == (first["id"], False)
    for args, flag in (
        (("--depends-on", "987654"), "--depends-on: no job has id 987654"),
        (("--run-on-failure",), "'--run-on-failure'"),
        (("--unique-key", "k", "--count", "2"), "'--unique-key'"),
        (("--wait", "5", "--count", "2"), "'--wait'"),
        (("--wait", "0"), "'--wait'"),
        # a value the rules of a new job refuse: one line, as every such refusal
        (("--unique-key", ""), "error: --unique-key: String should have at least 1 character"),
    ):
        result = jobqueue(pg_dsn, "enqueue", "noop", *args)
        assert result.returncode in (1, 2), (args, result.stdout)
        assert flag in flat(result.stderr), (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert len(ok_json(pg_dsn, "jobs", "list")) == 1  # nothing else went in


def test_wait_returns_the_finished_job_and_its_exit_code(pg_dsn: str, tmp_path: Path) -> None:
    late = jobqueue(pg_dsn, "enqueue", "noop", "--wait", "0.5", "--json")
    assert late.returncode == 1  # no worker yet: still pending when the time is up
    assert json.loads(late.stdout)["status"] == "pending"
    worker = start_worker_process(pg_dsn, tmp_path / "worker.log")
    try:
        done = jobqueue(pg_dsn, "enqueue", "noop", "--wait", "60", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "completed"
        failed = jobqueue(
            pg_dsn,
            "enqueue",
            "test_fail",
            "--max-tries",
            "1",
            "--wait",
            "60",
            JOBQUEUE_HANDLER_MODULES="tests.integration.queue_handlers",
        )
        assert failed.returncode == 1
        assert "is failed" in flat(failed.stdout)
    finally:
        stop_process(worker)
