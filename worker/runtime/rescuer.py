"""Crash rescue. Two rules, and every worker runs both:
- a dead worker's jobs: a worker whose liveness lock is free (worker.runtime.liveness) has
  died, and its running jobs go back to pending at once. This sweep runs every second or so
  on the worker's LISTEN connection (in place of its idle probe), and again with the lease
  sweep;
- expired leases: jobs whose lease expired while their worker stopped heartbeating (a hung
  process, one cut off without the server noticing, or a worker of the previous release,
  which holds no liveness lock) go back too, every JOBQUEUE_RESCUE_INTERVAL; an advisory lock
  lets one sweep at a time.
Both also fail a job that has no tries left."""

from __future__ import annotations

import logging
from uuid import UUID

import asyncpg

from worker.db import maintenance
from worker.db.claims import Conn
from worker.db.errors import is_transient
from worker.runtime.heartbeat import renew_lease
from worker.runtime.liveness import Liveness
from worker.runtime.tracker import Tracker
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

RESCUE_BATCH = 1000
LIVENESS_SWEEP_SECONDS = 1.0  # or JOBQUEUE_RESCUE_INTERVAL, when that is shorter


async def rescue_dead_once(conn: Conn, liveness: Liveness) -> int:
    """One sweep of the dead workers' jobs; returns how many it moved. Skipped while our own
    view is not settled (Liveness.may_rescue). An error that is not an outage, or a statement
    past its deadline, is logged: on the LISTEN connection, it must not end the session."""
    moved = 0
    if not liveness.may_rescue():
        return moved
    while True:
        try:
            result = await maintenance.rescue_dead_workers(
                conn, RESCUE_BATCH, liveness.settle_seconds, liveness.key
            )
        except asyncpg.QueryCanceledError as exc:  # its deadline (LOCK_STATEMENT_SECONDS)
            log.warning("dead-worker rescue gave up (%s); the lease sweep tries again", exc)
            return moved
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("dead-worker rescue failed")
            return moved
        swept = result.requeued + result.failed
        moved += swept
        if swept:
            log.warning(
                "rescued the jobs of dead workers (liveness lock free): "
                "%d back to pending, %d failed",
                result.requeued,
                result.failed,
            )
        if swept < RESCUE_BATCH:
            return moved


async def rescue_once(
    pool: asyncpg.Pool,
    settings: WorkerSettings,
    worker_id: UUID,
    tracker: Tracker,
    liveness: Liveness | None = None,
) -> int:
    """One sweep of both rules; returns how many jobs it moved."""
    # Renew our own lease first, so that after an outage we do not rescue our own live jobs.
    await renew_lease(
        pool, settings, worker_id, tracker, None if liveness is None else liveness.key
    )
    async with pool.acquire() as conn:
        moved = 0 if liveness is None else await rescue_dead_once(conn, liveness)
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
