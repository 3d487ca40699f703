"""`PATCH /queues/{name}`: a queue's concurrency, per-key and rate limits (flow control): its
models and handler, which routes_queues serves beside the queue's pause and resume.

Fields left out keep their value, null clears one. Zero, negative or out-of-range values get a
422 that names the field; a never-seen queue gets its row.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from worker.api.state import State
from worker.api.validation import QueueName as CheckedName
from worker.db import limits

Limit = Annotated[int, Field(strict=True, ge=1, le=limits.MAX_LIMIT)]
QueueName = Annotated[CheckedName, Path(description="The queue.")]


class RateLimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: Limit = Field(description="Starts allowed in any window of `per_seconds`.")
    per_seconds: float = Field(
        gt=0,
        le=limits.MAX_PERIOD_SECONDS,
        allow_inf_nan=False,
        description="The window, in seconds.",
    )


class QueueLimitsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "concurrency_limit": 5,
                    "key_concurrency_limit": 2,
                    "rate_limit": {"jobs": 100, "per_seconds": 60},
                }
            ]
        },
    )

    concurrency_limit: Limit | None = Field(
        default=None, description="Most jobs of the queue running at once, over all workers."
    )
    key_concurrency_limit: Limit | None = Field(
        default=None, description="Most running jobs per concurrency_key (e.g. per tenant)."
    )
    rate_limit: RateLimitIn | None = Field(default=None, description="Most starts per window.")


class RateLimitOut(BaseModel):
    jobs: int
    per_seconds: float


class CountOut(BaseModel):
    count: int
    kind: str


class QueueLimitsOut(BaseModel):
    name: str
    paused: bool
    concurrency_limit: int | None
    key_concurrency_limit: int | None
    rate_limit: RateLimitOut | None
    running: int = Field(description="Jobs of the queue running now.")
    recent_starts: int = Field(description="Starts inside the current rate window.")
    blocked: CountOut = Field(description="Ready jobs that the limits hold back right now.")


async def patch_queue(name: QueueName, body: QueueLimitsIn, state: State) -> Any:
    given = body.model_fields_set
    rate = body.rate_limit
    change = limits.LimitChange(
        concurrency_limit=body.concurrency_limit if "concurrency_limit" in given else limits.KEEP,
        key_concurrency_limit=body.key_concurrency_limit
        if "key_concurrency_limit" in given
        else limits.KEEP,
        rate_limit=(None if rate is None else limits.RateLimit(rate.jobs, rate.per_seconds))
        if "rate_limit" in given
        else limits.KEEP,
    )
    flow = await limits.set_limits(state.require_pool(), name, change)
    return flow.to_dict()
