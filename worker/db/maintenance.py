"""Sweeps that one worker at a time runs, each under a transaction-scoped advisory lock:
rescue of expired leases, and retention pruning in LIMITed batches. Also the rescue of dead
workers' jobs, which needs no such lock: each dead worker's own liveness lock serialises it."""

from __future__ import annotations

from dataclasses import dataclass

from worker.db import sql_files
from worker.db.claims import Conn, row_count

# Arbitrary constants shared by every worker; distinct from the migration lock.
RESCUE_LOCK_KEY = 0x6A6F6272  # "jobr"
RETENTION_LOCK_KEY = 0x6A6F6270  # "jobp"


_sql = sql_files.statements("maintenance")


@dataclass(frozen=True)
class RescueResult:
    requeued: int
    failed: int


async def rescue_expired_leases(conn: Conn, batch: int = 1000) -> RescueResult | None:
    """Return expired jobs to pending (or failed when no tries are left).

    None when another sweeper holds the lock right now.
    """
    async with conn.transaction():
        if not await conn.fetchval(_sql("try_lock"), RESCUE_LOCK_KEY):
            return None
        row = await conn.fetchrow(_sql("rescue_expired"), batch)
    assert row is not None
    return RescueResult(requeued=row["requeued"], failed=row["failed"])


async def rescue_dead_workers(
    conn: Conn, batch: int = 1000, settle_seconds: float = 5.0, own_key: int | None = None
) -> RescueResult:
    """Return the running jobs of workers whose liveness lock is free (their process is gone)
    to pending, or to failed when no tries are left: at most `batch` jobs per call. None are
    taken within `settle_seconds` of the server's start, while workers reconnect. `own_key`,
    the sweeper's own lock, is never tried.

    One round trip when every lock is held (the usual case): the first look is a statement of
    its own, whose locks end with it; only when it finds a dead worker is the look repeated in
    the transaction that rescues."""
    if not await conn.fetch(_sql("dead_workers"), settle_seconds, own_key):
        return RescueResult(requeued=0, failed=0)
    async with conn.transaction():
        dead = await conn.fetch(_sql("dead_workers"), settle_seconds, own_key)
        if not dead:
            return RescueResult(requeued=0, failed=0)
        row = await conn.fetchrow(_sql("rescue_dead_workers"), [r["id"] for r in dead], batch)
    assert row is not None
    return RescueResult(requeued=row["requeued"], failed=row["failed"])


async def forget_dead_workers(conn: Conn, dead_for_seconds: float) -> int:
    """Delete worker rows whose lease ran out long ago and that hold no running job."""
    status = await conn.execute(_sql("forget_dead_workers"), dead_for_seconds)
    return row_count(status)


async def prune_finished_batch(conn: Conn, older_than_seconds: float, batch: int) -> int | None:
    """Delete one batch of finished jobs older than the retention; None when another worker
    is pruning right now."""
    return await _prune(conn, "prune_finished", older_than_seconds, batch)


async def prune_batches(conn: Conn, older_than_seconds: float, batch: int) -> int | None:
    """Delete up to `batch` completed batches (workflows) older than the retention; None when
    another worker is pruning right now."""
    return await _prune(conn, "prune_batches", older_than_seconds, batch)


async def _prune(conn: Conn, statement: str, older_than_seconds: float, batch: int) -> int | None:
    async with conn.transaction():  # one pruner at a time, whatever it prunes
        if not await conn.fetchval(_sql("try_lock"), RETENTION_LOCK_KEY):
            return None
        return int(await conn.fetchval(_sql(statement), older_than_seconds, batch))
