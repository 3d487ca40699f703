"""What handler tests share: a JobContext whose settings point at a test's own folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worker.handlers import JobContext
from worker.settings import HandlerSettings


def job_context(
    tmp_path: Path, *, job_id: int = 1, job_type: str = "noop", **settings: Any
) -> JobContext:
    values: dict[str, Any] = {
        "outbox_dir": str(tmp_path / "outbox"),
        "reports_dir": str(tmp_path / "reports"),
        "images_dir": str(tmp_path / "images"),
        "smtp_host": None,
    }
    values.update(settings)
    return JobContext(
        job_id=job_id,
        job_type=job_type,
        queue_name="default",
        attempt=1,
        max_tries=3,
        config=HandlerSettings(**values),
        worker_id="test-worker",
    )


def leftover_temp_files(folder: Path) -> list[Path]:
    """Temporary files an atomic write would leave behind had it not cleaned up."""
    return [p for p in folder.rglob(".*.tmp")]
