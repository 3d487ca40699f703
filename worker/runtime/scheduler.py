"""The periodic scheduler: every worker process runs one, and they need no leader. Each pass
locks the due schedules with SKIP LOCKED, so one process fires a given tick and the others
pass over it (worker.db.schedules.fire_due). Between passes it sleeps until the earliest
next_run_at, at most JOBQUEUE_SCHEDULER_INTERVAL seconds, so that schedules added meanwhile are
seen."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from worker.db import schedules
from worker.db.schedules import ScheduleDef
from worker.runtime.resilience import is_transient, retry_transient
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

MIN_SLEEP_SECONDS = 0.01  # a tick due "now" waits for the clock to pass it, not a busy loop


class Scheduler:
    def __init__(
        self, pool: asyncpg.Pool, settings: WorkerSettings, declared: list[ScheduleDef]
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._declared = declared
        self.passes = 0

    async def sync_declared(self) -> None:
        """Write the schedules the code declares (`@registry.periodic`)."""
        if not self._declared:
            return

        async def write() -> list[str]:
            async with self._pool.acquire() as conn:
                return await schedules.sync_code_schedules(conn, self._declared)

        changed = await retry_transient(
            write, what="write declared schedules", deadline=time.monotonic() + 30
        )
        if changed:
            log.info("declared schedules written: %s", ", ".join(changed))

    async def fire_once(self) -> float:
        """One pass; returns the seconds to sleep before the next."""
        async with self._pool.acquire() as conn:
            done = await schedules.fire_due(
                conn, grace_seconds=self._settings.schedule_grace_seconds
            )
        self.passes += 1
        for name, tick, job_id in done.enqueued:
            log.debug("schedule %s: tick %s enqueued job %d", name, tick.isoformat(), job_id)
        for name in done.caught_up:
            log.info(
                "schedule %s: ticks were missed while no scheduler ran (catch_up decides: one "
                "job for them, or none)",
                name,
            )
        for name, problem in done.failed:
            log.warning("schedule %s: its job could not be enqueued: %s", name, problem)
        interval = self._settings.scheduler_interval
        if done.next_due_seconds is None:
            return interval
        return min(interval, max(MIN_SLEEP_SECONDS, done.next_due_seconds))

    async def run(self) -> None:
        try:
            await self.sync_declared()
        except Exception:
            log.exception("could not write the declared schedules; firing the stored ones")
        while True:
            try:
                delay = await self.fire_once()
            except Exception as exc:
                delay = self._settings.scheduler_interval
                if is_transient(exc):
                    log.warning("scheduler: database unavailable (%s)", exc)
                else:
                    log.exception("scheduler pass failed")
            await asyncio.sleep(delay)
