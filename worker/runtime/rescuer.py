"""Crash rescue: jobs whose lease expired while their worker stopped heartbeating go back to
pending (or to failed when no tries are left). Every worker runs this loop; an advisory lock
lets one sweep at a time."""

from __future__ import annotations

import logging
from uuid import UUID

import asyncpg

from worker.db import maintenance
from worker.runtime.heartbeat import renew_lease
from worker.runtime.tracker import Tracker
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

RESCUE_BATCH = 1000


async def rescue_once(
    pool: asyncpg.Pool, settings: WorkerSettings, worker_id: UUID, tracker: Tracker
) -> int:
    """One sweep; returns how many jobs it moved."""
    # Renew our own lease first, so that after an outage we do not rescue our own live jobs.
    await renew_lease(pool, settings, worker_id, tracker)
    moved = 0
    async with pool.acquire() as conn:
        while True:
            result = await maintenance.rescue_expired_leases(conn, RESCUE_BATCH)
            if result is None:  # another worker is sweeping
                break
            swept = result.requeued + result.failed
            moved += swept
            if swept:
                log.warning(
                    "rescued jobs with expired leases: %d back to pending, %d failed",
                    result.requeued,
                    result.failed,
                )
            if swept < RESCUE_BATCH:
                break
        await maintenance.forget_dead_workers(conn, max(60.0, 10 * settings.lease_seconds))
    return moved
