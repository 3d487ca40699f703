"""`jobqueue schedules ...`, `jobqueue queues ...` and `jobqueue jobs retry|cancel` by filter, as
users run them (subprocesses reading DB_URL), against real PostgreSQL."""

from __future__ import annotations

from tests.integration.test_cli import flat, jobqueue, ok_json


def test_schedules_add_list_pause_resume_delete(pg_dsn: str) -> None:
    added = jobqueue(
        pg_dsn, "schedules", "add", "nightly", "noop", "--cron", "0 2 * * *",
        "--timezone", "Europe/Paris", "--payload", '{"a": 1}', "--tick-field", "tick",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "added schedule nightly" in added.stdout
    again = jobqueue(pg_dsn, "schedules", "add", "nightly", "noop", "--cron", "0 2 * * *")
    assert "replaced schedule nightly" in again.stdout
    every = ok_json(pg_dsn, "schedules", "add", "often", "noop", "--every", "30", "-q", "fast")
    assert every["created"] is True and every["job"]["queue_name"] == "fast"

    listed = ok_json(pg_dsn, "schedules", "list")
    assert [s["name"] for s in listed] == ["nightly", "often"]
    table = jobqueue(pg_dsn, "schedules", "list")
    assert "0 2 * * *" in table.stdout and "every 30s" in table.stdout

    assert "paused" in jobqueue(pg_dsn, "schedules", "pause", "often").stdout
    assert ok_json(pg_dsn, "schedules", "list")[1]["paused"] is True
    assert "active" in jobqueue(pg_dsn, "schedules", "resume", "often").stdout
    assert jobqueue(pg_dsn, "schedules", "delete", "often").returncode == 0
    gone = jobqueue(pg_dsn, "schedules", "delete", "often")
    assert gone.returncode == 1 and "no schedule named 'often'" in flat(gone.stderr)


def test_schedules_add_refuses_bad_input_naming_the_option(pg_dsn: str) -> None:
    cases = [
        (["--cron", "61 * * * *"], "--cron"),
        (["--cron", "* * * * *", "--timezone", "Nowhere/Land"], "--timezone"),
        (["--every", "0"], "--every"),
        ([], "--cron"),
        (["--every", "5", "--catch-up", "all"], "--catch-up"),
    ]
    for options, named in cases:
        result = jobqueue(pg_dsn, "schedules", "add", "x", "noop", *options)
        assert result.returncode == 2, (options, result.stderr)
        assert named in flat(result.stderr), (options, result.stderr)
    unknown = jobqueue(pg_dsn, "schedules", "add", "x", "no_such_type", "--every", "5")
    assert unknown.returncode == 1 and "unknown job_type" in flat(unknown.stderr)
    model = jobqueue(pg_dsn, "schedules", "add", "x", "emails", "--every", "5")
    assert model.returncode == 1 and "--payload.subject: emails: is required" in flat(model.stderr)
    assert ok_json(pg_dsn, "schedules", "list") == []


def test_queues_list_pause_resume(pg_dsn: str) -> None:
    paused = jobqueue(pg_dsn, "queues", "pause", "later")
    assert paused.returncode == 0 and "queue later is paused" in paused.stdout
    ok_json(pg_dsn, "enqueue", "noop", "-q", "later")
    shown = ok_json(pg_dsn, "queues", "list")["queues"]
    assert [(q["name"], q["paused"], q["ready"]["count"]) for q in shown] == [("later", True, 1)]
    table = jobqueue(pg_dsn, "queues", "list")
    assert "later" in table.stdout and "paused" in table.stdout
    assert "active" in jobqueue(pg_dsn, "queues", "resume", "later").stdout
    assert ok_json(pg_dsn, "queues", "list")["queues"][0]["paused"] is False


def test_jobs_retry_and_cancel_by_filter(pg_dsn: str) -> None:
    for queue in ("x", "x", "y"):
        ok_json(pg_dsn, "enqueue", "noop", "-q", queue)
    cancelled = jobqueue(pg_dsn, "jobs", "cancel", "--status", "pending", "--queue", "x")
    assert cancelled.returncode == 0 and "cancelled 2 jobs" in cancelled.stdout, cancelled.stderr
    retried = jobqueue(pg_dsn, "jobs", "retry", "--status", "cancelled", "--queue", "x")
    assert retried.returncode == 0 and "retried 2 jobs" in retried.stdout
    assert "cancelled 3 jobs" in jobqueue(pg_dsn, "jobs", "cancel", "--all").stdout
    refused = jobqueue(pg_dsn, "jobs", "retry")
    assert refused.returncode == 2 and "--all" in flat(refused.stderr)
    both = jobqueue(pg_dsn, "jobs", "cancel", "1", "--queue", "x")
    assert both.returncode == 2 and "not both" in flat(both.stderr)
    wrong = jobqueue(pg_dsn, "jobs", "retry", "--status", "pending")
    assert wrong.returncode == 2 and "failed or cancelled" in flat(wrong.stderr)
