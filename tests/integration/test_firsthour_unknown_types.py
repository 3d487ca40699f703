"""Finding 7: a job type the API knows before the workers do is not lost. A rolling deploy,
as it happens: the API runs the new code (it knows `fh_chatty`), the running worker the old
(it does not). The job goes back to pending with a clear last_error and a growing wait, using
no try, and completes once a worker with the new code starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.integration.api_support import JOBS, api_process
from tests.integration.firsthour_support import handler_env
from tests.integration.queue_support import eventually, fetch


async def test_an_unknown_job_type_waits_for_a_worker_that_knows_it(
    pg_dsn: str, workers: Any, tmp_path: Path
) -> None:
    workers(pg_dsn, JOBQUEUE_WORKER_NAME="old-worker")  # the built-in handlers only
    with api_process(pg_dsn, tmp_path / "api.log", **handler_env()) as api:
        client = httpx.AsyncClient(base_url=api.url, timeout=70)
        created = await client.post(JOBS, json={"job_type": "fh_chatty", "max_tries": 1})
        assert created.status_code == 201, created.text
        job_url = f"{JOBS}/{created.json()['id']}"

        async def deferred_twice() -> Any:
            rows = await fetch(
                pg_dsn, "SELECT status, attempts, last_error, run_at - now() AS wait FROM jobs"
            )
            return rows if rows[0]["last_error"] and rows[0]["wait"].total_seconds() > 1.5 else 0

        (row,) = await eventually(deferred_twice, what="the old worker to defer the job again")
        assert (row["status"], row["attempts"]) == ("pending", 0)  # no try used: max_tries=1
        assert row["last_error"].startswith(
            "no handler for job_type 'fh_chatty' in worker old-worker (it has: emails, "
        )
        assert (
            "waiting for a worker that has one, without using a try; next try in"
            in (row["last_error"])
        )
        assert "WARNING" in (tmp_path / "worker-0.log").read_text()

        workers(pg_dsn, JOBQUEUE_WORKER_NAME="new-worker", **handler_env())  # the new code
        done = (await client.get(job_url, params={"wait_seconds": 60})).json()
        await client.aclose()
    assert done["status"] == "completed", done
    assert done["attempts"] == 1 and done["result"] == {"logged": 3}
