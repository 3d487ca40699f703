"""Finding 1: a plain `def` handler runs, once, in a thread off the event loop, under the
same timeout and cancellation rules as an `async def` one. Real `jobqueue worker` processes,
jobs enqueued and cancelled through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.firsthour_support import cli, cli_json, handler_env
from tests.integration.queue_support import eventually


def _start(workers: Any, dsn: str, **env: str) -> None:
    workers(dsn, **handler_env(**env))


async def test_a_def_handler_runs_once_in_a_thread_while_the_worker_stays_alive(
    pg_dsn: str, workers: Any, tmp_path: Path
) -> None:
    # A lease shorter than the handler's blocking sleep: were the handler run on the event
    # loop, no heartbeat would extend it, and the rescuer would hand the job out again.
    _start(
        workers,
        pg_dsn,
        JOBQUEUE_LEASE_SECONDS="1",
        JOBQUEUE_HEARTBEAT_SECONDS="0.2",
        JOBQUEUE_RESCUE_INTERVAL="0.2",
    )
    marker = tmp_path / "runs.txt"
    payload = json.dumps({"marker": str(marker), "seconds": 2.5})
    job = cli_json(pg_dsn, "enqueue", "fh_sync", "--payload", payload, "--wait", "60")
    assert job["status"] == "completed", job
    assert job["attempts"] == 1 and job["last_error"] is None
    assert job["result"]["thread"].startswith("jobqueue-handler")
    assert marker.read_text().splitlines() == [f"{job['id']} 1"]  # its side effect, once


async def test_a_def_handler_that_times_out_fails_and_is_told_to_stop(
    pg_dsn: str, workers: Any, tmp_path: Path
) -> None:
    _start(workers, pg_dsn)
    marker = tmp_path / "slow.txt"
    payload = json.dumps({"marker": str(marker), "seconds": 60})
    args = ("--payload", payload, "--max-tries", "1", "--timeout", "0.5", "--wait", "60")
    waited = cli(pg_dsn, "enqueue", "fh_sync_slow", *args, "--json")
    assert waited.returncode == 1, waited.stderr  # exit 1: it did not complete
    job = json.loads(waited.stdout)
    assert job["status"] == "failed"
    assert job["last_error"] == "timed out after 0.5s"

    async def told() -> bool:
        return marker.exists() and marker.read_text().strip() == f"stopped {job['id']}"

    await eventually(told, what="the handler to see ctx.cancelled")


async def test_a_running_def_handler_is_cancelled_like_an_async_one(
    pg_dsn: str, workers: Any, tmp_path: Path
) -> None:
    _start(workers, pg_dsn)
    marker = tmp_path / "cancel.txt"
    payload = json.dumps({"marker": str(marker), "seconds": 60})
    created = cli_json(pg_dsn, "enqueue", "fh_sync_slow", "--payload", payload)
    job_id = str(created["id"])

    async def running() -> bool:
        return cli_json(pg_dsn, "jobs", "get", job_id)["status"] == "running"

    await eventually(running, what="the job to start")
    assert cli(pg_dsn, "jobs", "cancel", job_id).returncode == 0

    async def told() -> bool:
        return marker.exists() and marker.read_text().strip() == f"stopped {job_id}"

    await eventually(told, what="the cancelled handler to see ctx.cancelled")
    assert cli_json(pg_dsn, "jobs", "get", job_id)["status"] == "cancelled"
