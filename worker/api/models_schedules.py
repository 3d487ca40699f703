"""Request and response bodies of the schedules and queues routes (DESIGN.md, "Queues and
schedules")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from worker.api.models import QueueDepthOut
from worker.api.validation import no_nul
from worker.job_checks import INT32_MAX, QueueName

SCHEDULE_EXAMPLE: dict[str, Any] = {
    "name": "nightly-report",
    "cron": "0 2 * * *",
    "timezone": "Europe/Paris",
    "job": {"job_type": "report_generation", "payload": {"report_type": "daily"}},
}


class ScheduleJobIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    job_type: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict)
    queue_name: QueueName = Field(default="default")
    priority: int = Field(default=0, ge=-INT32_MAX, le=INT32_MAX)
    max_tries: int = Field(default=3, ge=1, le=1000)
    tick_field: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A payload key that receives the tick's time (ISO 8601, UTC).",
    )

    _check_text = field_validator("job_type", "tick_field")(no_nul)


class ScheduleIn(BaseModel):
    """Give `cron` (five fields, in `timezone`) or `every_seconds`."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [SCHEDULE_EXAMPLE]}
    )

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^/]+$")
    cron: str | None = Field(default=None, min_length=1, max_length=200)
    every_seconds: float | None = Field(default=None, gt=0, le=366 * 24 * 3600.0)
    timezone: str = Field(default="UTC", min_length=1, max_length=100)
    catch_up: Literal["one", "skip"] = Field(
        default="one",
        description="After every worker was down: one job for the missed ticks, or none.",
    )
    job: ScheduleJobIn

    _check_text = field_validator("name", "cron", "timezone")(no_nul)


class ScheduleOut(BaseModel):
    name: str
    cron: str | None
    every_seconds: float | None
    timezone: str
    catch_up: str
    job: dict[str, Any]
    paused: bool
    source: str = Field(description="'api' (API or CLI) or 'code' (@registry.periodic).")
    next_run_at: datetime | None
    last_run_at: datetime | None = Field(description="The last tick a job was enqueued for.")
    last_job_id: int | None
    last_job_status: str | None
    created_at: datetime
    updated_at: datetime


class SchedulesOut(BaseModel):
    schedules: list[ScheduleOut]


class RateLimit(BaseModel):
    jobs: int
    per_seconds: float


class QueueStateOut(QueueDepthOut):
    """A queue's depth with its stored settings."""

    name: str
    paused: bool
    concurrency_limit: int | None
    key_concurrency_limit: int | None
    rate_limit: RateLimit | None
    blocked: int = Field(description="Jobs waiting on dependencies.")


class QueueStatesOut(BaseModel):
    queues: list[QueueStateOut]
    truncated: bool = Field(description="True when there were too many queues to list.")
