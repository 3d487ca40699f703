"""GET /jobs/{id}'s answer: the job, with its attempts' errors and log lines (DESIGN.md, "Jobs
as users read them"). Lists leave both out."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from worker.api.models import JobOut


class AttemptError(BaseModel):
    attempt: int
    at: datetime
    error: str = Field(description="As last_error showed it after this attempt.")
    traceback: str | None = Field(
        default=None, description="Where the handler raised it; capped at 16 KiB."
    )


class LogLine(BaseModel):
    attempt: int
    at: datetime
    level: str = Field(description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    message: str


class JobDetail(JobOut):
    errors: list[AttemptError] = Field(
        default_factory=list, description="One per failed attempt, newest first."
    )
    logs: list[LogLine] = Field(
        default_factory=list,
        description="What the handler logged through ctx.logger, oldest first; at most "
        "64 KiB of messages per job.",
    )
