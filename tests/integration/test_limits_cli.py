"""`jobqueue queues set` as users run it: set, keep, clear, and bad values named."""

from __future__ import annotations

import asyncio

from tests.integration.queue_support import fetchval
from tests.integration.test_cli import flat, jobqueue, ok_json


def test_queues_set_sets_keeps_and_clears_limits(pg_dsn: str) -> None:
    flow = ok_json(
        pg_dsn,
        "queues",
        "set",
        "emails",
        "--concurrency",
        "5",
        "--key-concurrency",
        "2",
        "--rate",
        "100/60s",
    )
    assert (flow["concurrency_limit"], flow["key_concurrency_limit"]) == (5, 2)
    assert flow["rate_limit"] == {"jobs": 100, "per_seconds": 60.0}
    flow = ok_json(pg_dsn, "queues", "set", "emails", "--rate", "none")
    assert (flow["concurrency_limit"], flow["rate_limit"]) == (5, None)
    flow = ok_json(pg_dsn, "queues", "set", "emails", "--concurrency", "none", "--rate", "5/s")
    assert (flow["concurrency_limit"], flow["key_concurrency_limit"]) == (None, 2)
    assert flow["rate_limit"] == {"jobs": 5, "per_seconds": 1.0}
    table = jobqueue(pg_dsn, "queues", "set", "emails")
    assert table.returncode == 0 and "5/1s" in table.stdout


def test_bad_limits_name_the_option_and_change_nothing(pg_dsn: str) -> None:
    for args, option in [
        (["--rate", "100/0s"], "--rate"),
        (["--rate", "fast"], "--rate"),
        (["--concurrency", "0"], "--concurrency"),
        (["--key-concurrency", "-2"], "--key-concurrency"),
    ]:
        result = jobqueue(pg_dsn, "queues", "set", "emails", *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"Invalid value for '{option}'" in flat(result.stderr), result.stderr
    assert ok_json(pg_dsn, "queues", "set", "emails")["concurrency_limit"] is None


def test_enqueue_takes_a_concurrency_key(pg_dsn: str) -> None:
    created = ok_json(pg_dsn, "enqueue", "noop", "--concurrency-key", "tenant-7")
    result = jobqueue(pg_dsn, "enqueue", "noop", "--concurrency-key", "")
    assert result.returncode == 1 and "error: --concurrency-key: " in flat(result.stderr)
    key = asyncio.run(
        fetchval(pg_dsn, "SELECT concurrency_key FROM jobs WHERE id = $1", created["id"])
    )
    assert key == "tenant-7"
