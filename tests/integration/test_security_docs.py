"""docs/security.md's examples, run as written: `jobqueue api` closed without a token, and
the scoped tokens over curl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fixtures.doc_examples import run_bash_example
from tests.fixtures.processes import free_port, log_tail

REPO = Path(__file__).resolve().parents[2]


def run(name: str, dsn: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "DB_URL": dsn,
        "PORT": str(free_port()),
        "PYTHONPATH": str(REPO),
    }
    return run_bash_example("docs/security.md", name, env, cwd)


def test_closed_by_default(pg_dsn: str, tmp_path: Path) -> None:
    done = run("closed-by-default", pg_dsn, tmp_path)
    assert done.stdout.strip() == "exit 2", (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "JOBQUEUE_API_TOKEN" in lines[0], done.stderr


def test_scoped_tokens(pg_dsn: str, tmp_path: Path) -> None:
    done = run("scoped-tokens", pg_dsn, tmp_path)
    assert done.returncode == 0, f"{done.stderr}\n{log_tail(tmp_path / 'api.log')}"
    assert done.stdout.split() == ["201", "403", "200", "403"], done.stdout
