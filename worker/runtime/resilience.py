"""Backoff with jitter, and riding out PostgreSQL restarts: which errors mean "the connection
went away, try again" rather than a bug."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from worker.db.errors import is_transient

__all__ = ["backoff_delay", "is_transient", "retry_transient", "run_periodically"]

T = TypeVar("T")
log = logging.getLogger(__name__)


def backoff_delay(
    attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before try number `attempt + 1`: base * 2^(attempt-1), capped, with
    "equal jitter" (between half and all of it) so that retries of one burst spread out."""
    exponent = min(max(attempt - 1, 0), 62)
    full = min(cap, base * (2.0**exponent))
    return full / 2 + rand() * full / 2


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    deadline: float | None = None,
    first_delay: float = 0.05,
    max_delay: float = 5.0,
    give_up: Callable[[], bool] | None = None,
) -> T:
    """Run `operation` until it succeeds, waiting with backoff while the database is away.

    Errors that are not transient propagate at once; past `deadline` (time.monotonic()), or
    once `give_up()` says so, the last transient error propagates too.
    """
    attempt = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            attempt += 1
            delay = backoff_delay(attempt, first_delay, max_delay)
            if deadline is not None and time.monotonic() + delay > deadline:
                raise
            if give_up is not None and give_up():
                raise
            level = logging.WARNING if attempt == 1 else logging.DEBUG
            log.log(level, "%s: database unavailable (%s); retrying", what, exc)
            await asyncio.sleep(delay)


async def run_periodically(
    interval: float, action: Callable[[], Awaitable[object]], *, what: str
) -> None:
    """Run `action` every `interval` seconds (jittered by +-50% so that many workers spread
    out) until cancelled; an error is logged and the next round tries again."""
    while True:
        await asyncio.sleep(interval * (0.5 + random.random()))
        try:
            await action()
        except Exception as exc:
            if is_transient(exc):
                log.warning("%s: database unavailable (%s)", what, exc)
            else:
                log.exception("%s failed", what)
