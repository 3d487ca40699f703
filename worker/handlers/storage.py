"""Files that handlers write: safe names, paths kept inside their folder, atomic writes.

A retried job rewrites the same name, and a crash mid-write never leaves a half file under
the final name: the bytes go to a temporary file in the same folder, which is then renamed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from worker.handlers.payload import InvalidPayload

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_stem(text: str, *, fallback: str, max_length: int = 80) -> str:
    """A file name part made of letters, digits, dot, dash and underscore only."""
    stem = _UNSAFE_CHARS.sub("-", text).strip("-._")[:max_length].rstrip("-._")
    return stem or fallback


def check_file_name(field: str, name: str) -> str:
    """A name the user chose: refuse it rather than rewrite it if it is not already safe."""
    if safe_file_stem(name, fallback="") != name:
        raise InvalidPayload(
            field,
            f"unsafe file name {name!r}: use letters, digits, '.', '-' and '_' only, "
            "with no folders",
        )
    return name


def resolve_inside(base_dir: str | Path, relative: str, *, field: str) -> Path:
    """`relative` (or an absolute path) resolved with symlinks, which must stay in base_dir."""
    if "\x00" in relative:
        raise InvalidPayload(field, "unsafe path: contains a NUL byte")
    base = Path(base_dir).resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base):
        raise InvalidPayload(field, f"unsafe path {relative!r}: it must stay inside {base}")
    return candidate


def write_file(folder: str | Path, name: str, data: bytes) -> Path:
    """Write `data` atomically as folder/name (folder made if missing); returns the full path."""
    path = Path(folder).resolve() / name
    atomic_write(path, data)
    return path


def save_output(folder: str | Path, name: str, data: bytes, **facts: Any) -> dict[str, Any]:
    """Write `data` as folder/name; the job's result for it: the path, then `facts`, then the
    size and the hash a reader can check the file against."""
    path = write_file(folder, name, data)
    return {
        "path": str(path),
        **facts,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp_file:
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.chmod(temp_name, 0o644)  # mkstemp makes 0600; readers in other pods need to read it
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
