"""GET /queues (depth, pause state, limits as stored, running and blocked), POST
/queues/{name}/pause and /resume, and PATCH /queues/{name} (the limits; its models and handler
are in routes_limits). A paused queue still takes new jobs; workers claim none from it, and the
controller counts its ready jobs as no demand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from worker.api.auth import FIELD_ERRORS, any_token, queue_router
from worker.api.models_schedules import QueueStateOut, QueueStatesOut
from worker.api.routes_limits import QueueLimitsOut, QueueName, patch_queue
from worker.api.state import State
from worker.db import queues
from worker.settings import ApiSettings


async def _state_of(state: State, name: str) -> dict[str, Any]:
    found, _ = await queues.queue_states(state.require_pool())
    return next(q.to_dict() for q in found if q.row.name == name)


def queues_router(settings: ApiSettings) -> APIRouter:
    router = queue_router(any_token(settings), "queues", FIELD_ERRORS)

    @router.get(
        "/queues",
        response_model=QueueStatesOut,
        summary="Each queue: depth, running and blocked jobs, pause state and limits",
    )
    async def list_queues(state: State) -> Any:
        found, truncated = await queues.queue_states(state.require_read_pool())
        return {"queues": [q.to_dict() for q in found], "truncated": truncated}

    @router.post(
        "/queues/{name}/pause",
        response_model=QueueStateOut,
        summary="Stop claiming from a queue (running jobs finish; enqueueing still works)",
    )
    async def pause(name: QueueName, state: State) -> Any:
        await queues.set_paused(state.require_pool(), name, True)
        return await _state_of(state, name)

    @router.post("/queues/{name}/resume", response_model=QueueStateOut, summary="Claim again")
    async def resume(name: QueueName, state: State) -> Any:
        await queues.set_paused(state.require_pool(), name, False)
        return await _state_of(state, name)

    router.add_api_route(
        "/queues/{name}",
        patch_queue,
        methods=["PATCH"],
        response_model=QueueLimitsOut,
        summary="Set or clear a queue's concurrency, per-key and rate limits",
        responses={422: {"description": "A limit is not a positive number; names the field."}},
    )
    return router
