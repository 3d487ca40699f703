"""What the first-hour tests share: the `jobqueue` console script as a user runs it, with the
test handlers (tests/integration/firsthour_handlers.py) known to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HANDLERS = "tests.integration.firsthour_handlers"
JOBQUEUE = Path(sys.executable).with_name("jobqueue")


def handler_env(**env: str) -> dict[str, str]:
    """What a worker, API or CLI process needs to know the first-hour handlers."""
    return {"PYTHONPATH": str(REPO), "JOBQUEUE_HANDLER_MODULES": HANDLERS, **env}


def cli(dsn: str, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """`jobqueue ARGS` as a subprocess, output piped (not a terminal), as in a script."""
    return subprocess.run(
        [str(JOBQUEUE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "DB_URL": dsn, **handler_env(), **env},
    )


def cli_json(dsn: str, *args: str, **env: str) -> Any:
    result = cli(dsn, *args, "--json", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
