"""Retention: finished jobs older than JOBQUEUE_RETENTION_SECONDS are deleted in LIMITed batches,
by one worker at a time (an advisory lock per batch). A retention of 0 keeps everything."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from worker.db import maintenance
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


async def prune_once(pool: asyncpg.Pool, settings: WorkerSettings) -> int:
    """Delete batches until one comes back short; returns how many jobs went."""
    if settings.retention_seconds <= 0:
        return 0
    total = 0
    while True:
        async with pool.acquire() as conn:
            deleted = await maintenance.prune_finished_batch(
                conn, settings.retention_seconds, settings.retention_batch
            )
        if deleted is None:  # another worker is pruning
            break
        total += deleted
        if deleted < settings.retention_batch:
            break
        await asyncio.sleep(0)  # let the hot path have the connection between batches
    if total:
        log.info("pruned %d finished jobs older than %.0fs", total, settings.retention_seconds)
    return total
