"""The examples of docs/flow-control.md, run as written against real PostgreSQL and a real
`jobqueue api` process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.fixtures.doc_examples import ROOT, example
from tests.integration.api_support import api_process

DOC = "docs/flow-control.md"


def _bash(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PATH": path, "COLUMNS": "200", **env},
    )


def test_the_cli_example_sets_then_clears_the_rate(pg_dsn: str) -> None:
    result = _bash(example(DOC, "cli").code, DB_URL=pg_dsn)
    assert result.returncode == 0, result.stderr
    assert "100/60s" in result.stdout
    final = json.loads(result.stdout[result.stdout.index("{") :])
    assert (final["concurrency_limit"], final["key_concurrency_limit"]) == (5, 2)
    assert final["rate_limit"] is None


def test_the_api_example_answers_as_the_doc_shows(pg_dsn: str, tmp_path: Path) -> None:
    assert shutil.which("curl"), "curl is needed to run the doc's example"
    with api_process(pg_dsn, tmp_path / "api.log") as api:
        result = _bash(example(DOC, "api").code, JOBQUEUE_API=api.url)
    assert result.returncode == 0, result.stderr
    shown = json.loads((ROOT / DOC).read_text().split("```json\n", 1)[1].split("```", 1)[0])
    assert json.loads(result.stdout) == shown
