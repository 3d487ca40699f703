"""`jobqueue worker` imports only what a worker needs: its start is a pod's cold start, every
import a slice of the time from a burst to its first job (bench/bench_worker_start.py times
it; speed is not asserted here). The real command runs, with `python -X importtime` on, against
a port where no database listens: it imports everything its start needs, then stops at the
connection with its one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.processes import free_port

JOBQUEUE = Path(sys.executable).with_name("jobqueue")
# Nothing a worker runs: the CLI's own libraries, the API's, the controller's, the console's.
FORBIDDEN = (
    "typer",
    "click",
    "rich",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "httpx",
    "kopf",
    "kubernetes",
    "kubernetes_asyncio",
    "opentelemetry",
    "jobqueue.cli",
    "controller",
    "worker.api",
    "worker.console",
    # issue 27: what the start needs only later, or never. The settings read the environment
    # themselves; Pillow, aiosmtplib and multiprocessing load with the first image, email or
    # bounded job; the scheduler (cron, the jobs module and the job checks' pydantic models)
    # loads after the first claim.
    "pydantic_settings",
    "PIL",
    "aiosmtplib",
    "email.headerregistry",
    "multiprocessing",
    "cronsim",
    "worker.runtime.scheduler",
    "worker.db.schedules",
    "worker.db.jobs",
    "worker.db.workflows",
    "worker.job_checks",
)
# Every module the start imports, the interpreter's own included. Today's start imports about
# 480; the CLI's path imported 560. A new dependency on the start path has to move this.
# 485: issue 25's shadowing guard (jobqueue.guard, run before `worker` is imported), the
# errors' one base (worker.errors) and the built-ins' own settings (worker.handlers.config);
# the typed tasks and the client stay off the path (loaded on first use). 481 here, plus a
# little room for a fresh venv's count.
# 400: issue 27 took pydantic-settings, Pillow, aiosmtplib, multiprocessing and the scheduler's
# modules off the path (394 here).
MODULE_BUDGET = 400


@pytest.fixture(scope="module")
def imported() -> list[str]:
    env = {
        **os.environ,
        "PYTHONPROFILEIMPORTTIME": "1",
        "DB_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/none",
    }
    out = subprocess.run(
        [str(JOBQUEUE), "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1, out.stderr[-2000:]
    assert "error: cannot reach PostgreSQL" in out.stderr  # it got as far as connecting
    return [
        line.rsplit("|", 1)[1].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    ]


def test_the_worker_imports_none_of_the_cli_api_or_controller(imported: list[str]) -> None:
    found = sorted(
        name for name in imported if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    )
    assert found == []


def test_the_worker_imports_its_runtime_and_stays_within_the_module_budget(
    imported: list[str],
) -> None:
    assert "worker.runtime.main" in imported and "asyncpg" in imported  # it did get there
    assert len(imported) <= MODULE_BUDGET, f"{len(imported)} modules on the worker's start path"
