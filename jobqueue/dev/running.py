"""Where `jobqueue dev` keeps its data, and how other commands find a running stack: the
stack writes its addresses to `stack.env` in its data directory, and holds a flock on the
directory while it runs, so a file left by a killed stack is never taken for a live one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import platformdirs

STACK_FILE = "stack.env"
DATA_DIR_VARIABLE = "JOBQUEUE_DEV_DATA_DIR"  # --data-dir's default, for the CLI to look in too


def default_data_dir() -> Path:
    """JOBQUEUE_DEV_DATA_DIR, else the user's cache dir. As root, PostgreSQL runs as `nobody`,
    who cannot enter /root, so the machine-wide cache dir instead."""
    named = os.environ.get(DATA_DIR_VARIABLE, "").strip()
    if named:
        return Path(named)
    if os.geteuid() == 0:
        return platformdirs.site_cache_path("job-queue") / "dev"
    return platformdirs.user_cache_path("job-queue") / "dev"


def write_stack_file(directory: Path, values: dict[str, str]) -> None:
    lines = "".join(f"{key}={value}\n" for key, value in values.items())
    (directory / STACK_FILE).write_text(lines)


def remove_stack_file(directory: Path) -> None:
    (directory / STACK_FILE).unlink(missing_ok=True)


def _locked(directory: Path) -> bool:
    """True while a `jobqueue dev` holds the directory's flock."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return False


def running_stack(directory: Path | None = None) -> dict[str, str] | None:
    """The running stack's addresses (DB_URL, JOBQUEUE_API_URL), or None."""
    directory = directory or default_data_dir()
    try:
        text = (directory / STACK_FILE).read_text()
    except OSError:
        return None
    if not _locked(directory):
        return None
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value for key, value in pairs}
