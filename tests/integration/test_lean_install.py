"""`pip install job-queue`, with no extras, into a fresh virtualenv: an app there declares typed
tasks (an `async def` and a plain `def`), enqueues them from Python and from the CLI (which
checks the payload as the API does), and a `jobqueue worker` from that venv runs them (and
leaves a built-in whose extra is missing for another worker, saying so), while no
Kubernetes, image, mail or API module is installed or imported; a command whose extra is missing
says which, in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.processes import log_tail, start_logged, stop_process
from tests.integration.queue_support import REPO

HEAVY = (
    "kopf",
    "kubernetes_asyncio",
    "PIL",
    "aiosmtplib",
    "fastapi",
    "fastapi_swagger",
    "uvicorn",
)

APP = """
import sys
import threading

from pydantic import BaseModel

import jobqueue

HEAVY = {heavy!r}


class Sum(BaseModel):
    a: int
    b: int


@jobqueue.task
async def add(payload: Sum, ctx: jobqueue.JobContext) -> dict:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
    return {{"sum": payload.a + payload.b, "worker_loaded": loaded}}


@jobqueue.task
def multiply(payload: Sum) -> dict:
    # a plain def: the worker's thread pool runs it
    return {{"product": payload.a * payload.b, "thread": threading.current_thread().name[:16]}}
"""

ENQUEUE = """
import asyncio, json, os, sys

import jobqueue
from leanapp import Sum, add, multiply


async def main() -> None:
    async with jobqueue.Client(os.environ["DB_URL"]) as client:
        job_id = await add.enqueue(client, Sum(a=2, b=40))
        try:
            await add.enqueue(client, {"a": 1})
        except jobqueue.InvalidJob as exc:
            refused = str(exc)
        job = await client.wait(job_id, timeout=60)
        product = await client.wait(await multiply.enqueue(client, Sum(a=6, b=7)), timeout=60)
        # a built-in whose extra this install lacks: the worker leaves it for one that has it
        mail = await jobqueue.enqueue(client, "emails", {"to": "a@example.com", "subject": "Hi"})
        for _ in range(600):
            waiting = await client.get(mail)
            if waiting.last_error:
                break
            await asyncio.sleep(0.1)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
    print(json.dumps({"status": job.status, "result": job.result, "refused": refused,
                      "product": product.result, "mail": [waiting.status, waiting.last_error],
                      "app_loaded": loaded}))


HEAVY = set(json.loads(sys.argv[1]))
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def lean_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lean")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=root,  # not the repository: the venv must use its installed copy
    )
    assert install.returncode == 0, install.stdout + install.stderr
    yield root / "venv"


def _env(dsn: str, app: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "DB_URL": dsn, "PYTHONPATH": str(app), "JOBQUEUE_WORKER_PORT": "0"}


def test_the_lean_install_enqueues_and_runs_a_typed_task_without_heavy_modules(
    lean_venv: Path, pg_dsn: str, tmp_path: Path
) -> None:
    bin_dir = lean_venv / "bin"
    python = bin_dir / "python"
    missing = subprocess.run(
        [
            str(python),
            "-c",
            f"import importlib.util as u; print([m for m in {HEAVY!r} if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert missing.stdout.strip() == "[]", "the lean install brought an extra's module"
    app = tmp_path / "app"
    app.mkdir()
    (app / "leanapp.py").write_text(APP.format(heavy=set(HEAVY)))
    (app / "enqueue.py").write_text(ENQUEUE)
    env = _env(pg_dsn, app)
    log = tmp_path / "worker.log"
    worker = start_logged(
        [str(bin_dir / "jobqueue"), "worker"],
        log,
        env={**env, "JOBQUEUE_HANDLER_MODULES": "leanapp", "POLL_INTERVAL": "0.2"},
        cwd=str(tmp_path),
    )
    try:
        result = subprocess.run(
            [str(python), str(app / "enqueue.py"), json.dumps(HEAVY)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr + log_tail(log)
        body = json.loads(result.stdout)
        cli_env = {**env, "JOBQUEUE_HANDLER_MODULES": "leanapp"}
        refused = _jobqueue(bin_dir, cli_env, "enqueue", "add", "--payload", '{"a": 1}')
        ran = _jobqueue(
            bin_dir,
            cli_env,
            "enqueue",
            "multiply",
            "--payload",
            '{"a": 2, "b": 3}',
            "--wait",
            "60",
            "--json",
        )
    finally:
        stop_process(worker)
        print(f"--- worker.log\n{log_tail(log)}")
    assert body["status"] == "completed"
    assert body["result"] == {"sum": 42, "worker_loaded": []}
    assert body["app_loaded"] == []
    assert body["refused"] == "payload.b: Field required"
    assert body["product"] == {"product": 42, "thread": "jobqueue-handler"}
    status, last_error = body["mail"]
    assert status == "pending", body["mail"]
    assert "it is a built-in that needs the 'handlers' extra" in last_error, last_error
    # the CLI: the task's model refuses the payload in one line, naming the field
    assert (refused.returncode, refused.stderr.strip()) == (
        1,
        "error: --payload.b: add: Field required",
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["result"] == {"product": 6, "thread": "jobqueue-handler"}


def _jobqueue(bin_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "jobqueue"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        (["jobqueue", "api"], "api"),
        (["jobqueue", "controller"], "controller"),
        (["kubectl-jobqueue", "status"], "controller"),
        (["jobqueue", "dev"], "local"),
    ],
)
def test_a_command_whose_extra_is_missing_names_it_in_one_line(
    lean_venv: Path, command: list[str], extra: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(lean_venv / "bin" / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**_env("postgresql://nobody@127.0.0.1:1/none", tmp_path), "COLUMNS": "200"},
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.endswith(f"needs the '{extra}' extra: pip install 'job-queue[{extra}]'"), line


def test_without_db_url_the_lean_cli_looks_for_a_dev_stack_and_says_how(
    lean_venv: Path, tmp_path: Path
) -> None:
    # the CLI looks for a running `jobqueue dev` in its cache dir (platformdirs, a lean
    # dependency for that): none here, so one line says how to get a database
    env = {k: v for k, v in _env("unused", tmp_path).items() if k != "DB_URL"}
    env["JOBQUEUE_DEV_DATA_DIR"] = str(tmp_path / "no-stack")
    env["COLUMNS"] = "400"
    result = _jobqueue(lean_venv / "bin", env, "jobs", "list")
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "DB_URL" in line, line


def test_the_lean_venv_is_not_this_one() -> None:
    # the assertions above would prove nothing if the tests ran in the lean venv itself
    assert __import__("importlib.util").util.find_spec("fastapi") is not None, sys.prefix
