"""GET /batches/{id}: a tracked batch's counts by status and its callback job."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from worker.api.auth import any_token, queue_router
from worker.api.state import State
from worker.db.workflows import get_batch
from worker.settings import ApiSettings

BatchId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The batch's id.")]


class BatchStatusOut(BaseModel):
    id: int
    total: int = Field(description="Jobs in the batch.")
    finished: int = Field(description="Of them, how many are terminal.")
    counts: dict[str, int] = Field(description="The batch's jobs by status.")
    callback_job_id: int | None = Field(
        description="The on_complete job, once every job of the batch is terminal."
    )
    created_at: datetime
    completed_at: datetime | None


async def show_batch(batch_id: BatchId, state: State) -> Any:
    batch = await get_batch(state.require_pool(), batch_id)
    if batch is None:
        raise HTTPException(status_code=404, detail=f"no batch has id {batch_id}")
    return batch


def batches_router(settings: ApiSettings) -> APIRouter:
    router = queue_router(any_token(settings), "workflows")
    router.add_api_route(
        "/batches/{batch_id}",
        show_batch,
        methods=["GET"],
        response_model=BatchStatusOut,
        summary="A batch with on_complete: counts by status and the callback's id",
        responses={404: {"description": "No batch has this id."}},
    )
    return router
