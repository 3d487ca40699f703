"""`jobqueue dev` as a newcomer runs it. Finding 4: a cron job fires while the pool sits at
zero (the local autoscaler counts the due schedule, reason schedule-due). Finding 9: the
console's Scaling page shows the local stack's decisions."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fixtures.processes import log_tail, stop_process, wait_until
from tests.integration.test_dev_stack import STARTUP_BOUND, Stack, children_of
from tests.integration.test_dev_stack import data_dir as data_dir  # the fixture

API = "/api/v1/queue"


def test_a_cron_job_runs_on_a_pool_at_zero_and_the_scaling_page_says_why(
    data_dir: Path, tmp_path: Path
) -> None:
    stack = Stack(data_dir, tmp_path / "dev.log")
    try:
        wait_until(stack.ready, timeout=STARTUP_BOUND, what="the dev stack's API")
        assert len(children_of(stack.proc.pid)) == 1  # the API alone: the pool is at zero
        schedule = {"name": "every-minute", "cron": "* * * * *", "job": {"job_type": "noop"}}
        added = httpx.post(f"{stack.url}{API}/schedules", json=schedule, timeout=10)
        assert added.status_code in (200, 201), added.text

        def fired() -> int | None:
            stack.check_running()
            shown = httpx.get(f"{stack.url}{API}/schedules/every-minute", timeout=10).json()
            return shown["last_job_id"]

        wait_until(fired, timeout=150, what=f"the tick's job:\n{log_tail(stack.log, 40)}")
        job_id = fired()

        def completed() -> bool:
            job = httpx.get(f"{stack.url}{API}/jobs/{job_id}", timeout=10).json()
            return job["status"] == "completed"

        wait_until(completed, timeout=60, what=f"job {job_id}:\n{log_tail(stack.log, 40)}")
        assert "scaled 0 → 1 workers (schedule-due: 0 ready, 0 running)" in stack.text()
        stack.wait_for_log("scaled 1 → 0 workers (scale-down")

        page = httpx.get(f"{stack.url}/console/scaling", timeout=10)
        assert page.status_code == 200
        assert "jobqueue-dev-workers" in page.text and "schedule-due" in page.text
        assert stack.interrupt() == 0, log_tail(stack.log, 80)
    finally:
        stop_process(stack.proc)
