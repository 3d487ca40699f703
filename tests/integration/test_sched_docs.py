"""docs/scheduling.md's examples, run: the Python ones define handlers on the real registry, the
CLI ones run `jobqueue` against real PostgreSQL, the curl ones a real `jobqueue api`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fixtures.doc_examples import example
from tests.fixtures.tools import REPO_ROOT
from tests.integration.api_support import api_process
from worker.handlers import registry

DOC = "docs/scheduling.md"


def run_bash(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "COLUMNS": "200", **env},
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.parametrize(("name", "job_type"), [("periodic", "cleanup_exports"),
                                                ("snooze", "poll_export")])  # fmt: skip
async def test_python_examples_register_their_handlers(name: str, job_type: str) -> None:
    namespace: dict[str, object] = {}
    try:
        exec(compile(example(DOC, name).code, DOC, "exec"), namespace)
        spec = registry.get(job_type)
        assert spec is not None
        if name == "periodic":
            found = {s.name: s for s in registry.schedules()}
            assert found["cleanup_exports"].timing.every_seconds == 3600
            assert found["cleanup_exports_deep"].timing.timezone == "Europe/Paris"
            assert found["cleanup_exports_deep"].catch_up == "skip"
        else:
            from worker.handlers import Snooze

            with pytest.raises(Snooze):
                await spec.handler({}, None)  # type: ignore[arg-type]
            assert await spec.handler({"ready": True}, None) == {"done": True}  # type: ignore[arg-type]
    finally:
        registry.unregister(job_type)
    assert not [s for s in registry.schedules() if s.job.job_type == job_type]


def test_cli_examples_run(pg_dsn: str) -> None:
    for name in ("schedules-cli", "queues-cli", "bulk-cli"):
        run_bash(example(DOC, name).code, DB_URL=pg_dsn)
    listed = run_bash("jobqueue schedules list --json", DB_URL=pg_dsn).stdout
    assert "nightly-report" in listed and "heartbeat" not in listed
    run_bash(example("README.md", "scheduling").code, DB_URL=pg_dsn)


def test_curl_examples_run(pg_dsn: str, tmp_path: Path) -> None:
    with api_process(pg_dsn, tmp_path / "api.log") as api:
        base = f"{api.url}/api/v1/queue"
        for name in ("schedules-api", "unique-key"):
            out = run_bash(example(DOC, name).code, API=base).stdout
            assert "detail" not in out, out
        names = [s["name"] for s in httpx.get(f"{base}/schedules").json()["schedules"]]
        assert names == ["nightly-report"]
        again = httpx.post(
            f"{base}/jobs", json={"job_type": "noop", "unique_key": "sync-account-42"}
        )
        assert again.status_code == 200
