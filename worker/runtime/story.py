"""What an attempt leaves for people to read: its traceback when it fails, capped, and the
lines its handler logs through ctx.logger, capped per job. The acknowledgement stores both
(worker/db/attempts.py)."""

from __future__ import annotations

import concurrent.futures.thread
import logging
import os
import threading
import traceback
from pathlib import Path
from types import TracebackType

from worker.db.attempts import JOB_LOG_CAP_BYTES, AttemptStory

TRACEBACK_CAP_CHARS = 16 * 1024  # the head (where it started) and the tail (where it broke)
LINE_CAP_CHARS = 8 * 1024  # one log line, a logged exception's traceback included
# Frames that say nothing to a user: ours in the runtime, and the thread pool's that run a
# plain `def` handler.
_PLUMBING = (
    str(Path(__file__).resolve().parent),
    os.path.dirname(concurrent.futures.thread.__file__),
)


def clean_text(text: str) -> str:
    """Text PostgreSQL stores: no NUL characters, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n... {cut} characters cut ...\n{text[-tail:]}"


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the first frame that is the user's: past the runtime's, the thread
    pool's, and those of wrappers that hide themselves with a `__tracebackhide__` local (the
    convention pytest reads), as a typed task's adapter does."""
    while tb is not None and (
        tb.tb_frame.f_code.co_filename.startswith(_PLUMBING)
        or tb.tb_frame.f_locals.get("__tracebackhide__")
    ):
        tb = tb.tb_next
    return tb


def format_traceback(exc: BaseException) -> str:
    """The exception's traceback, chained causes included, capped at TRACEBACK_CAP_CHARS."""
    lines = traceback.format_exception(type(exc), exc, _user_frames(exc.__traceback__))
    return clean_text(cap("".join(lines).rstrip("\n"), TRACEBACK_CAP_CHARS))


def location(exc: BaseException) -> str | None:
    """Where it was raised: `file.py:12 in function`, from the innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"


class JobLog:
    """One attempt's log lines, kept up to JOB_LOG_CAP_BYTES; later lines are counted only.
    A `def` handler logs from its thread, so adding takes a lock."""

    __slots__ = ("_lock", "_size", "story")

    def __init__(self) -> None:
        self.story = AttemptStory()
        self._size = 0
        self._lock = threading.Lock()

    def __call__(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message}\n{format_traceback(record.exc_info[1])}"
        message = clean_text(cap(message, LINE_CAP_CHARS))
        size = len(message.encode("utf-8"))
        with self._lock:
            if self._size + size > JOB_LOG_CAP_BYTES:
                self.story.dropped += 1
                return
            self._size += size
            self.story.lines.append((record.created, record.levelname, message))
