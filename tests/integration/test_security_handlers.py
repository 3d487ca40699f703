"""No job can take a worker down (docs/security.md): the 189-byte image job against a real
`jobqueue worker` process fails for good while the worker lives on, under the pixel cap and,
with the cap lifted, under the memory bound; the emails handler's limits and the switch that
turns a built-in off, at enqueue and in the worker."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from PIL import Image

from tests.integration.api_support import JOBS, api_client, api_settings
from tests.integration.queue_support import eventually
from tests.integration.security_support import MiB, peak_rss
from worker.db.jobs import Job, NewJob, enqueue_many, get_job


def tiny_png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# The finding's job: a 1x1 PNG resized to 10000x10000 (822 MB in a worker with 512 Mi).
BOMB: dict[str, Any] = {
    "image_base64": tiny_png(),
    "operation": "resize",
    "width": 10_000,
    "height": 10_000,
}
EMAIL = {"to": "a@example.com", "subject": "Hi", "body": "Hello"}


async def finished(conn: asyncpg.Connection, job_id: int, within: float = 120) -> Job:
    async def check() -> Job | None:
        job = await get_job(conn, job_id)
        return job if job and job.status in ("completed", "failed") else None

    return await eventually(check, within=within, what=f"job {job_id} to finish")


def folders(tmp_path: Path) -> dict[str, str]:
    return {
        "JOBQUEUE_IMAGES_DIR": str(tmp_path / "images"),
        "JOBQUEUE_OUTBOX_DIR": str(tmp_path / "outbox"),
        "JOBQUEUE_REPORTS_DIR": str(tmp_path / "reports"),
        "JOBQUEUE_SMTP_HOST": "",
    }


def test_the_payload_is_189_bytes() -> None:
    import json

    assert len(json.dumps(BOMB, separators=(",", ":"))) <= 189


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "JOBQUEUE_IMAGES_MAX_PIXELS"),
        # the cap lifted: the memory bound is what stops it
        (
            {"JOBQUEUE_IMAGES_MAX_PIXELS": "1000000000", "JOBQUEUE_HANDLER_MEMORY_MB": "128"},
            "out of memory",
        ),
    ],
    ids=["pixel-cap", "memory-bound"],
)
async def test_the_image_bomb_fails_and_the_worker_lives(
    pg_dsn: str, conn: asyncpg.Connection, workers: Any, tmp_path: Path,
    env: dict[str, str], words: str,
) -> None:  # fmt: skip
    proc = workers(pg_dsn, **folders(tmp_path), **env)
    ((bomb, _), (after, _)) = await enqueue_many(
        conn,
        [
            NewJob("images_processing", BOMB, max_tries=1000),
            NewJob("images_processing", {**BOMB, "width": 64, "height": 64}),
        ],
    )
    failed = await finished(conn, bomb.id)
    assert (failed.status, failed.attempts) == ("failed", 1), failed.last_error
    assert words in (failed.last_error or ""), failed.last_error
    assert failed.last_error and failed.last_error.startswith("permanent error: ")
    # the same worker process goes on with the next job
    done = await finished(conn, after.id)
    assert done.status == "completed", done.last_error
    assert proc.poll() is None, "the worker died"
    grown = peak_rss(proc.pid)
    assert grown < 300 * MiB, f"the worker's peak memory reached {grown / MiB:.0f} MiB"


async def test_the_image_bomb_is_refused_at_enqueue(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        refused = await client.post(JOBS, json={"job_type": "images_processing", "payload": BOMB})
        assert refused.status_code == 422
        error = refused.json()["detail"][0]
        assert error["loc"] == ["body", "payload", "width"]
        assert "JOBQUEUE_IMAGES_MAX_PIXELS" in error["msg"]
        # one side given: the base64 source's header says what the other becomes
        one_side = {**BOMB, "height": None}
        refused = await client.post(
            JOBS, json={"job_type": "images_processing", "payload": one_side}
        )
        assert refused.status_code == 422
        fits = {**BOMB, "width": 1000, "height": 1000}
        made = await client.post(JOBS, json={"job_type": "images_processing", "payload": fits})
        assert made.status_code == 201


async def test_emails_recipients_are_limited(pg_dsn: str) -> None:
    settings = api_settings(pg_dsn, emails_max_recipients=3, emails_allowed_domains=["example.com"])
    async with api_client(settings) as client:
        many = {**EMAIL, "to": [f"u{n}@example.com" for n in range(3)], "bcc": "x@example.com"}
        refused = await client.post(JOBS, json={"job_type": "emails", "payload": many})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "payload", "to"]
        assert "JOBQUEUE_EMAILS_MAX_RECIPIENTS" in refused.text
        outside = {**EMAIL, "to": ["a@example.com", "victim@elsewhere.test"]}
        refused = await client.post(JOBS, json={"job_type": "emails", "payload": outside})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "payload", "to", 1]
        assert "JOBQUEUE_EMAILS_ALLOWED_DOMAINS" in refused.text
        sub = {**EMAIL, "to": "ops@mail.example.com"}  # a subdomain of a listed domain
        assert (await client.post(JOBS, json={"job_type": "emails", "payload": sub})).is_success


async def test_the_worker_holds_the_emails_limits_too(
    pg_dsn: str, conn: asyncpg.Connection, workers: Any, tmp_path: Path
) -> None:
    """A job that was enqueued before the settings (or past the API) is refused again."""
    workers(pg_dsn, **folders(tmp_path), JOBQUEUE_EMAILS_ALLOWED_DOMAINS="example.com")
    ((outside, _), (inside, _)) = await enqueue_many(
        conn,
        [NewJob("emails", {**EMAIL, "cc": "victim@elsewhere.test"}), NewJob("emails", EMAIL)],
    )
    refused = await finished(conn, outside.id)
    assert refused.status == "failed" and "cc[0]" in (refused.last_error or "")
    assert (await finished(conn, inside.id)).status == "completed"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1  # only the allowed one


async def test_a_built_in_handler_can_be_turned_off(
    pg_dsn: str, conn: asyncpg.Connection, workers: Any, tmp_path: Path
) -> None:
    settings = api_settings(pg_dsn, disabled_handlers=["emails"], allow_unknown_job_types=True)
    async with api_client(settings) as client:
        refused = await client.post(JOBS, json={"job_type": "emails", "payload": EMAIL})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "job_type"]
        assert "JOBQUEUE_DISABLED_HANDLERS" in refused.text
        made = await client.post(JOBS, json={"job_type": "noop"})
        assert made.status_code == 201
    workers(pg_dsn, **folders(tmp_path), JOBQUEUE_DISABLED_HANDLERS="emails")
    ((job, _),) = await enqueue_many(conn, [NewJob("emails", EMAIL)])
    refused_job = await finished(conn, job.id)
    # turned off on purpose: it fails for good, naming the setting, rather than waiting for
    # a worker that has the handler (as a job_type no worker knows yet does)
    assert refused_job.status == "failed"
    assert "JOBQUEUE_DISABLED_HANDLERS" in (refused_job.last_error or "")
    assert not (tmp_path / "outbox").exists() or not list((tmp_path / "outbox").glob("*.eml"))


@pytest.mark.parametrize("command", ["worker", "api"])
def test_a_wrong_name_to_turn_off_is_one_line(pg_dsn: str, command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "worker", command],
        env={
            "PATH": "/usr/bin:/bin",
            "DB_URL": pg_dsn,
            "JOBQUEUE_DISABLED_HANDLERS": "emials",
            "JOBQUEUE_API_HOST": "127.0.0.1",
            "JOBQUEUE_WORKER_PORT": "0",
        },
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "JOBQUEUE_DISABLED_HANDLERS" in lines[0] and "emials" in lines[0]
