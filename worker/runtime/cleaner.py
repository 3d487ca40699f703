"""Retention: finished jobs older than JOBQUEUE_RETENTION_SECONDS are deleted in LIMITed batches,
by one worker at a time (an advisory lock per batch), and then the completed workflow batches
(the `batches` rows behind POST /jobs/batch with on_complete) by the same rule, and the attempts'
errors and log lines older than the retention. A retention of 0 keeps everything."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from worker.db import attempts, maintenance
from worker.db.claims import Conn
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


Prune = Callable[[Conn, float, int], Awaitable["int | None"]]


async def prune_once(pool: asyncpg.Pool, settings: WorkerSettings) -> int:
    """Delete until a LIMITed round comes back short; returns how many jobs went."""
    if settings.retention_seconds <= 0:
        return 0
    total = await _prune_all(pool, settings, maintenance.prune_finished_batch)
    if total:
        log.info("pruned %d finished jobs older than %.0fs", total, settings.retention_seconds)
    batches = await _prune_all(pool, settings, maintenance.prune_batches)
    if batches:
        log.info(
            "pruned %d completed batches older than %.0fs", batches, settings.retention_seconds
        )
    # the attempts' errors and log lines, by their own age (migration 0010)
    await _prune_all(pool, settings, attempts.prune_attempt_history)
    return total


async def _prune_all(pool: asyncpg.Pool, settings: WorkerSettings, prune: Prune) -> int:
    total = 0
    while True:
        async with pool.acquire() as conn:
            deleted = await prune(conn, settings.retention_seconds, settings.retention_batch)
        if deleted is None:  # another worker is pruning
            break
        total += deleted
        if deleted < settings.retention_batch:
            break
        await asyncio.sleep(0)  # let the hot path have the connection between rounds
    return total
