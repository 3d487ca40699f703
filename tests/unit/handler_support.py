"""What handler tests share: a JobContext, with the built-in handlers' settings pointing at a
test's own folders (worker.handlers.config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worker.handlers import JobContext
from worker.handlers.config import configure
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
    configure(HandlerSettings(**values))  # each test that builds a context sets its own
    return JobContext(
        job_id=job_id,
        job_type=job_type,
        queue_name="default",
        attempt=1,
        max_tries=3,
        worker_id="test-worker",
    )


def leftover_temp_files(folder: Path) -> list[Path]:
    """Temporary files an atomic write would leave behind had it not cleaned up."""
    return [p for p in folder.rglob(".*.tmp")]


def pillow_loaded(payload: dict[str, Any], ctx: JobContext) -> list[str]:
    """Run in a memory-bounded child: which of Pillow's modules it found already imported."""
    import sys

    from worker.handlers.images_processing import PILLOW

    return [name for name in PILLOW if name in sys.modules]
