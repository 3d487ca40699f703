"""Progress that handlers report with `ctx.progress(fraction, message)`.

A report only records the latest value in memory (handlers may call it from a thread, as the
built-in ones do, and as often as they like); one writer task stores what changed, then sleeps,
so each job is written at most once per interval and the claim path never waits on it.
Fractions outside 0..1 are clamped with a warning: a progress report never fails a job.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from uuid import UUID

import asyncpg

from worker.db.progress import write_progress
from worker.runtime.resilience import is_transient

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 1000


def clamp_fraction(fraction: float) -> float | None:
    """The fraction within 0..1; None when it is not a number at all."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        return None
    if math.isnan(value):
        return None
    return min(1.0, max(0.0, value))


def clean_message(message: object) -> str | None:
    if message is None:
        return None
    text = str(message).replace("\x00", "")
    return text[:MAX_MESSAGE_CHARS]


class ProgressWriter:
    def __init__(self, pool: asyncpg.Pool, worker_id: UUID, interval: float = 1.0) -> None:
        self._pool = pool
        self._worker_id = worker_id
        self._interval = interval
        self._lock = threading.Lock()
        self._latest: dict[tuple[int, int], tuple[float, str | None]] = {}
        self._warned: set[int] = set()
        self._wanted = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # One write at a time, so that a job's values land in the order they were reported:
        # a finishing job's last report must not be overtaken by an older one on its way.
        self._writing = asyncio.Lock()
        self._in_flight: frozenset[tuple[int, int]] = frozenset()
        self.writes = 0  # statements sent, for tests and metrics

    def report(self, job_id: int, attempts: int, fraction: float, message: str | None) -> None:
        """Record the latest progress of a running job; safe from any thread."""
        value = clamp_fraction(fraction)
        if value is None or value != fraction:
            if job_id not in self._warned:
                if len(self._warned) > 10_000:  # once per job, in bounded memory
                    self._warned.clear()
                self._warned.add(job_id)
                log.warning(
                    "job %d: progress %r is outside 0..1; stored as %s", job_id, fraction, value
                )
            if value is None:
                return
        with self._lock:
            self._latest[(job_id, attempts)] = (value, clean_message(message))
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wanted.set)

    def has_pending(self, job_id: int, attempts: int) -> bool:
        """Whether a report of the job is not stored yet: recorded, or in a write on its way."""
        key = (job_id, attempts)
        return key in self._latest or key in self._in_flight

    async def flush_job(self, job_id: int, attempts: int) -> None:
        """Store a finishing job's last report now, while it is still running, so that a
        completed job never shows a stale fraction; the one write beyond the throttle. A write
        already on its way goes first (and may have carried that last report itself)."""
        async with self._writing:
            with self._lock:
                value = self._latest.pop((job_id, attempts), None)
            if value is not None:
                try:
                    await self._write({(job_id, attempts): value})
                except Exception:  # advisory: a report never fails the job it describes
                    log.exception("job %d: its last progress report could not be stored", job_id)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._latest:  # reported before this task ran: nothing could wake it for those
            self._wanted.set()
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            async with self._writing:
                with self._lock:
                    pending, self._latest = self._latest, {}
                if pending:
                    self._in_flight = frozenset(pending)
                    try:
                        await self._write(pending)
                    finally:
                        self._in_flight = frozenset()
            await asyncio.sleep(self._interval)

    async def _write(self, pending: dict[tuple[int, int], tuple[float, str | None]]) -> None:
        try:
            async with self._pool.acquire() as conn:
                await write_progress(conn, self._worker_id, pending)
            self.writes += 1
        except Exception as exc:
            if not is_transient(exc):
                raise
            # progress is advisory: keep the newest values for the next round
            with self._lock:
                self._latest = {**pending, **self._latest}
            self._wanted.set()
