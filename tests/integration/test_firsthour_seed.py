"""Finding 5: the seed's README examples, byte for byte, against a real `jobqueue api` and a
real worker. The seed sent an emails payload of `to` and `subject` only; the API refused it
(422: body is required) and our README's copy quietly added `"body"`.

The commands are run unchanged by bash and curl. They name localhost:8001, which other
processes on a shared machine may hold, so curl is pointed at the test's API through its own
configuration file (CURL_HOME/.curlrc: connect-to), not through any change to the command."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.doc_examples import ROOT, example
from tests.integration.api_support import api_process
from tests.integration.queue_support import eventually, fetchval

# The seed's three curl examples. The seed's README is not in this repository's history (its
# first commit has no curl); issue 24 quotes its emails payload as {"to", "subject"}, which is
# the README's copy without the "body" it added.
SEED_CURLS = """\
# enqueue
curl -X POST http://localhost:8001/api/v1/queue/jobs -H 'Content-Type: application/json' \\
  -d '{"job_type": "emails",
       "payload": {"to": "user@example.com", "subject": "Welcome"},
       "queue_name": "default", "max_tries": 3}'
# one job: status, attempts, last_error, result
curl http://localhost:8001/api/v1/queue/jobs/1
# counts by status and by queue, oldest pending age, jobs done in the last minute
curl http://localhost:8001/api/v1/queue/jobs/stats/overview
"""


def test_the_readme_shows_the_seeds_examples_unchanged() -> None:
    assert example("README.md", "seed-curl").code == SEED_CURLS


async def test_the_readme_quick_start_cli_runs(pg_dsn: str, workers: Any, tmp_path: Path) -> None:
    workers(pg_dsn, JOBQUEUE_OUTBOX_DIR=str(tmp_path / "outbox"))
    ran = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", example("README.md", "quick-start-cli").code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "DB_URL": pg_dsn, "COLUMNS": "200"},
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "enqueued 500 noop jobs on queue default" in ran.stdout
    assert "job 501 completed" in ran.stdout
    assert "completed" in ran.stdout.split("job 501 completed", 1)[1]  # the list, then stats


def _run_seed_curls(port: int, tmp_path: Path) -> list[Any]:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is not installed (Debian: apt-get install curl)")
    home = tmp_path / "curl-home"
    home.mkdir()
    (home / ".curlrc").write_text(f"connect-to = localhost:8001:127.0.0.1:{port}\nsilent\n")
    ran = subprocess.run(
        ["bash", "-c", SEED_CURLS],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CURL_HOME": str(home)},
    )
    assert ran.returncode == 0, ran.stderr
    decoder, text, answers = json.JSONDecoder(), ran.stdout.strip(), []
    while text:  # three JSON documents, back to back
        value, end = decoder.raw_decode(text)
        answers.append(value)
        text = text[end:].strip()
    return answers


async def test_the_seeds_curls_work_byte_for_byte(
    pg_dsn: str, workers: Any, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    with api_process(pg_dsn, tmp_path / "api.log") as api:
        port = int(api.url.rsplit(":", 1)[1])
        created, shown, stats = _run_seed_curls(port, tmp_path)
    assert created["id"] == 1 and created["status"] == "pending", created
    assert created["payload"] == {"to": "user@example.com", "subject": "Welcome"}
    assert shown["id"] == 1 and shown["job_type"] == "emails"
    assert stats["by_status"]["pending"]["count"] == 1

    workers(pg_dsn, JOBQUEUE_OUTBOX_DIR=str(outbox))  # then a worker sends it (a dry run)

    async def completed() -> bool:
        return await fetchval(pg_dsn, "SELECT status FROM jobs WHERE id = 1") == "completed"

    await eventually(completed, what="the seed's email to be sent")
    (eml,) = outbox.glob("job-1-*.eml")
    assert "Subject: Welcome" in eml.read_text()
