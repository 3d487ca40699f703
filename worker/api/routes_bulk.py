"""POST /jobs/retry and POST /jobs/cancel: every job that matches a filter, in batches
(worker.db.bulk). An empty filter is refused unless `"all": true` says so."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from worker.api.auth import UNAUTHORIZED, any_token, queue_router
from worker.api.models import JobStatus
from worker.api.state import State
from worker.api.validation import InputError, no_nul
from worker.db import bulk
from worker.settings import ApiSettings


class BulkIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "failed", "queue_name": "default"}]},
    )

    status: JobStatus | None = Field(
        default=None,
        description="retry: failed or cancelled (default both); cancel: pending, blocked or "
        "running (default all three).",
    )
    queue_name: str | None = Field(default=None, min_length=1, max_length=200)
    job_type: str | None = Field(default=None, min_length=1, max_length=200)
    created_before: datetime | None = None
    all: bool = Field(default=False, description="Needed when no filter is given.")
    after_id: int = Field(
        default=0, ge=0, description="`after_id` of an answer with `done: false`, to go on."
    )
    up_to_id: int | None = Field(
        default=None, ge=0, description="`up_to_id` of that same answer, with `after_id`."
    )

    _check_text = field_validator("queue_name", "job_type")(no_nul)

    @field_validator("created_before")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class BulkOut(BaseModel):
    matched: int = Field(description="Jobs this call changed.")
    done: bool = Field(description="False: the time budget ran out; call again with after_id.")
    after_id: int
    up_to_id: int = Field(description="Jobs enqueued after the first call are left alone.")


BulkAction = Literal["retry", "cancel"]


async def _run(action: BulkAction, body: BulkIn, state: State) -> Any:
    status = body.status.value if body.status is not None else None
    where = bulk.JobFilter(status, body.queue_name, body.job_type, body.created_before)
    if where.empty and not body.all:
        raise InputError(
            422,
            ("body", "all"),
            "no filter given: name a status, queue_name, job_type or created_before, "
            'or send "all": true to act on every job',
            "value_error",
        )
    allowed = bulk.FROM_STATUSES[action]
    if status is not None and status not in allowed:
        raise InputError(
            422, ("body", "status"), f"{action} applies to {' or '.join(allowed)} jobs", "enum"
        )
    settings = state.settings
    result = await bulk.bulk_change(
        state.require_pool(),
        action,
        where,
        batch_size=settings.bulk_batch_size,
        time_budget=settings.bulk_time_budget,
        after_id=body.after_id,
        up_to_id=body.up_to_id,
    )
    return BulkOut(
        matched=result.matched, done=result.done, after_id=result.after_id,
        up_to_id=result.up_to_id,
    )  # fmt: skip


def bulk_router(settings: ApiSettings) -> APIRouter:
    router = queue_router(
        any_token(settings),
        "jobs",
        {**UNAUTHORIZED, 422: {"description": "A field is wrong, or no filter without `all`."}},
    )

    @router.post("/jobs/retry", response_model=BulkOut, summary="Retry every matching job")
    async def retry_matching(body: BulkIn, state: State) -> Any:
        return await _run("retry", body, state)

    @router.post("/jobs/cancel", response_model=BulkOut, summary="Cancel every matching job")
    async def cancel_matching(body: BulkIn, state: State) -> Any:
        return await _run("cancel", body, state)

    return router
