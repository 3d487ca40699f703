"""The heartbeat renews the worker's lease in `workers` (never the job rows) and reports its
in-flight count. At every beat it also reconciles the database with the tracker, both ways:
- jobs the tracker runs that are no longer running under our lease (cancelled, rescued) stop;
- rows running under our id that the tracker does not hold (a lost claim reply, a connection
  that broke on release) go back to pending.
So a row running under a live worker is held by it, or comes back within a lease plus one
heartbeat interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from uuid import UUID

import asyncpg

from worker.db import claims, workers
from worker.runtime.loop import reconcile
from worker.runtime.resilience import is_transient
from worker.runtime.tracker import Tracker
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


async def renew_lease(
    pool: asyncpg.Pool,
    settings: WorkerSettings,
    worker_id: UUID,
    tracker: Tracker,
    lock_key: int | None = None,
) -> None:
    async with pool.acquire() as conn:
        await workers.register_worker(
            conn,
            worker_id,
            settings.worker_name,
            settings.worker_queues,
            settings.max_concurrent_jobs,
            tracker.in_flight,
            settings.lease_seconds,
            lock_key,
        )


class Heartbeat:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: WorkerSettings,
        worker_id: UUID,
        tracker: Tracker,
        lock_key: int | None = None,
    ) -> None:
        self._pool = pool
        self.lock_key = lock_key  # the liveness lock the worker holds (worker.runtime.liveness)
        self._settings = settings
        self._worker_id = worker_id
        self._tracker = tracker
        self._check_soon = asyncio.Event()
        # a beat must land well within the lease it renews
        self.interval = min(settings.heartbeat_seconds, settings.lease_seconds / 3)
        self.last_beat: float | None = None

    def check_soon(self) -> None:
        """A cancellation was announced, or the liveness lock was lost and is held again (a
        rescuer may have taken our jobs): look for lost jobs now rather than at the next
        beat."""
        self._check_soon.set()

    async def beat(self) -> None:
        await renew_lease(self._pool, self._settings, self._worker_id, self._tracker, self.lock_key)
        self.last_beat = time.monotonic()

    async def reconcile(self) -> int:
        async with self._tracker.claim_gate, self._pool.acquire() as conn:
            return await reconcile(conn, self._worker_id, self._tracker)

    async def check_lost(self) -> None:
        ids, attempts = self._tracker.running_tokens()
        if not ids:
            return
        async with self._pool.acquire() as conn:
            lost = await claims.lost_jobs(conn, self._worker_id, ids, attempts)
        for job_id in self._tracker.cancel(lost):
            log.info("job %d is no longer ours (cancelled or rescued); stopping it", job_id)

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
                    await self.reconcile()
                await self.check_lost()
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("heartbeat failed")
                else:
                    log.warning("heartbeat: database unavailable (%s)", exc)
                    next_beat = time.monotonic() + min(1.0, self.interval)
