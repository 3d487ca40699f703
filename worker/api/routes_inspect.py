"""What operators look at: stats, queues and live workers. Cheap on millions of rows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from worker.api.auth import UNAUTHORIZED, any_token, queue_router
from worker.api.models import StatsOut, WorkersOut
from worker.api.state import State
from worker.db import inspect
from worker.settings import ApiSettings


def inspect_router(settings: ApiSettings) -> APIRouter:
    router = queue_router(any_token(settings), "inspect", UNAUTHORIZED)

    @router.get(
        "/jobs/stats/overview",
        response_model=StatsOut,
        summary="Counts by status and queue, oldest pending age, jobs done in the last minute",
    )
    async def stats_overview(state: State) -> Any:
        # one snapshot, so the numbers agree with each other
        async with (
            state.read_connection() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            stats = await inspect.stats_overview(conn)
        return {
            "total": stats.total,
            "by_status": stats.by_status,
            "by_queue": stats.queues.queues,
            "oldest_pending_age_seconds": stats.oldest_pending_age_seconds,
            "done_last_minute": stats.done_last_minute,
            "count_bound": stats.count_bound,
        }

    # GET /queues is in routes_queues, with each queue's pause state and limits

    @router.get("/workers", response_model=WorkersOut, summary="Live workers and their jobs")
    async def workers(state: State) -> Any:
        found = await inspect.live_workers(state.require_read_pool())
        return {"workers": found}

    return router
