"""The built-in handlers run through the queue: bad payloads fail at once with a readable
last_error; a good one completes and stores its result."""

from __future__ import annotations

import base64
from pathlib import Path

import asyncpg

from tests.integration.queue_support import eventually, running_worker
from worker.db.jobs import Job, NewJob, enqueue_many, get_job
from worker.handlers import registry

BAD_PAYLOADS = [
    NewJob("emails", {"to": "not an address", "subject": "s", "body": "b"}),
    NewJob("emails", {"subject": "no recipient"}),
    NewJob("report_generation", {"format": "pdf"}),
    NewJob("report_generation", {}),
    NewJob("images_processing", {"image_base64": base64.b64encode(b"not an image").decode()}),
    NewJob("images_processing", {}),
]


async def test_bad_payloads_fail_permanently_with_a_readable_error(
    pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folders = {
        "outbox_dir": str(tmp_path / "outbox"),
        "reports_dir": str(tmp_path / "reports"),
        "images_dir": str(tmp_path / "images"),
        "smtp_host": None,
    }
    async with running_worker(pg_dsn, registry, **folders):
        jobs = await enqueue_many(
            conn,
            [
                *BAD_PAYLOADS,
                NewJob("emails", {"to": "a@example.com", "subject": "Hi", "body": "x"}),
            ],
        )
        finished: list[Job] = [await _finished(conn, job.id) for job, _ in jobs]
    *bad, good = finished
    for job in bad:
        assert (job.status, job.attempts) == ("failed", 1), (job.job_type, job.payload)
        assert (job.last_error or "").startswith("permanent error: "), job.last_error
        assert "Traceback" not in (job.last_error or "")
    assert good.status == "completed" and isinstance(good.result, dict)
    assert list((tmp_path / "outbox").glob("*.eml"))  # the dry run wrote the message


async def _finished(conn: object, job_id: int) -> Job:
    async def check() -> Job | None:
        job = await get_job(conn, job_id)  # type: ignore[arg-type]
        return job if job and job.status in ("completed", "failed") else None

    return await eventually(check, what=f"job {job_id} to finish")
