"""A worker starts its scheduler after its first claim (the scheduler's imports are not on a
cold start's way to its first job, issue 27), and within one scheduler interval when that
claim does not come: a worker that cannot claim still writes and fires its schedules."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.queue_support import eventually, running_worker
from worker.db import schedules
from worker.handlers.base import HandlerRegistry, JobContext
from worker.runtime.loop import ClaimLoop


def periodic_registry() -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.periodic("tidy", every_seconds=3600)
    async def tidy(payload: dict[str, object], ctx: JobContext) -> None:
        return None

    return registry


async def declared_schedules(pool: asyncpg.Pool) -> list[str]:
    return [s.name for s in await schedules.list_schedules(pool) if s.name == "tidy"]


async def test_the_scheduler_starts_once_the_first_claim_is_made(
    pg_dsn: str, pool: asyncpg.Pool
) -> None:
    async with running_worker(pg_dsn, periodic_registry(), scheduler_interval=30) as worker:
        await eventually(lambda: declared_schedules(pool), what="the declared schedule")
        assert "firstClaim" in worker.startup.moments


async def test_a_worker_that_cannot_claim_starts_its_scheduler_after_one_interval(
    pg_dsn: str, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refused(self: ClaimLoop, limit: int) -> list[object]:
        raise RuntimeError("no claim in this test")

    monkeypatch.setattr(ClaimLoop, "_claim", refused)
    async with running_worker(pg_dsn, periodic_registry(), scheduler_interval=0.5) as worker:
        await eventually(lambda: declared_schedules(pool), what="the declared schedule")
        assert "firstClaim" not in worker.startup.moments
