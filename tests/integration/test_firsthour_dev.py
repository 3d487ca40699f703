"""`jobqueue dev` as a newcomer runs it. Finding 4: a cron job fires while the pool sits at
zero (the local autoscaler counts the due schedule, reason schedule-due). Finding 9: the
console's Scaling page shows the local stack's decisions. Finding 8: `make dev ARGS=...`
takes the stack's options. Finding 10: `--handlers` loads your own module (a plain `def`
handler here), and one that cannot be imported shows its real cause."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import httpx

from tests.fixtures.doc_examples import example
from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process, wait_until
from tests.fixtures.tools import REPO_ROOT
from tests.integration.firsthour_support import JOBQUEUE
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


HANDLERS = example("README.md", "my-handler").code  # the README's, as a newcomer saves it


class MakeDev(Stack):
    """`make dev ARGS='...'` from the repository, as the README says."""

    def __init__(self, data_dir: Path, log: Path, *args: str) -> None:
        self.port = free_port()
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        options = ["--port", str(self.port), "--data-dir", str(data_dir), "--no-ui", *args]
        env = {**os.environ, "JOBQUEUE_DRAIN_TIMEOUT": "5"}
        env.pop("DB_URL", None)
        self.proc = start_logged(
            ["make", "--no-print-directory", "dev", f"ARGS={shlex.join(options)}"],
            log,
            env=env,
            cwd=REPO_ROOT,
        )


def test_make_dev_takes_a_port_and_a_handlers_file_with_a_def_handler(
    data_dir: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "myjobs.py"
    mine.write_text(HANDLERS)
    stack = MakeDev(data_dir, tmp_path / "dev.log", "--handlers", str(mine))
    try:
        wait_until(stack.ready, timeout=STARTUP_BOUND, what="make dev's API on the port asked")
        job = {"job_type": "greet", "payload": {"name": "ann"}}
        created = httpx.post(f"{stack.url}{API}/jobs", json=job, timeout=10)
        assert created.status_code == 201, created.text  # the API knows the type too
        url = f"{stack.url}{API}/jobs/{created.json()['id']}"
        done = httpx.get(url, params={"wait_seconds": 60}, timeout=70).json()
        assert done["status"] == "completed" and done["attempts"] == 1, done
        assert done["result"] == {"greeting": "hello ann"}
        assert [line["message"] for line in done["logs"]] == ["greeting ann"]
    finally:
        stop_process(stack.proc)


def _dev_refusing(tmp_path: Path, handlers: Path) -> str:
    """`jobqueue dev --handlers PATH`, which must stop at once (exit 1): what it said."""
    ran = subprocess.run(
        [str(JOBQUEUE), "dev", "--no-ui", "--handlers", str(handlers), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "JOBQUEUE_DEV_DATA_DIR": str(tmp_path / "dev")},
    )
    said = ran.stdout + ran.stderr
    assert ran.returncode == 1, said
    return said


def test_a_handlers_module_that_cannot_import_shows_its_cause(tmp_path: Path) -> None:
    broken = tmp_path / "broken_jobs.py"
    broken.write_text("import json\nimport reqeusts  # a typo\n")
    said = _dev_refusing(tmp_path, broken)
    assert "handler module 'broken_jobs' cannot be imported" in said
    assert f'File "{broken}", line 2, in <module>' in said
    assert "ModuleNotFoundError: No module named 'reqeusts'" in said
    assert "see " not in said  # the cause itself, not a pointer to a log


def test_a_handlers_module_named_like_our_package_is_refused(tmp_path: Path) -> None:
    # a user's worker.py on the stack's path would shadow job-queue's own `worker` package
    (tmp_path / "worker.py").write_text("import jobqueue\n")
    said = _dev_refusing(tmp_path, tmp_path / "worker.py")
    assert "handler module 'worker' has the name of job-queue's own package" in said
