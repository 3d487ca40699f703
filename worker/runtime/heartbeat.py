"""The heartbeat renews the worker's lease in `workers` (never the job rows) and reports its
in-flight count; it also asks which running jobs are no longer ours, so that cancelled or
rescued jobs stop at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from uuid import UUID

import asyncpg

from worker.db import claims
from worker.runtime.loop import ClaimLoop
from worker.runtime.resilience import is_transient
from worker.settings import Settings

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self, pool: asyncpg.Pool, settings: Settings, worker_id: UUID, loop: ClaimLoop
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._worker_id = worker_id
        self._loop = loop
        self._check_soon = asyncio.Event()
        # a beat must land well within the lease it renews
        self.interval = min(settings.heartbeat_seconds, settings.lease_seconds / 3)
        self.last_beat: float | None = None

    def check_soon(self) -> None:
        """A cancellation was announced: look for lost jobs now rather than at the next beat."""
        self._check_soon.set()

    async def beat(self) -> None:
        async with self._pool.acquire() as conn:
            await claims.register_worker(
                conn,
                self._worker_id,
                self._settings.worker_name,
                self._settings.worker_queues,
                self._settings.max_concurrent_jobs,
                len(self._loop.running),
                self._settings.lease_seconds,
            )
        self.last_beat = time.monotonic()

    async def check_lost(self) -> None:
        ids, attempts = self._loop.running_tokens()
        if not ids:
            return
        async with self._pool.acquire() as conn:
            lost = await claims.lost_jobs(conn, self._worker_id, ids, attempts)
        self._loop.drop(lost)

    async def run(self) -> None:
        next_beat = time.monotonic() + self.interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_beat - time.monotonic())):
                    await self._check_soon.wait()
            self._check_soon.clear()
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.interval
                    await self.beat()
                await self.check_lost()
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("heartbeat failed")
                else:
                    log.warning("heartbeat: database unavailable (%s)", exc)
                    next_beat = time.monotonic() + min(1.0, self.interval)
