"""The REST API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from worker.db.inspect import CountKind
from worker.db.statuses import JobStatus
from worker.job_checks import MAX_DEPENDENCIES, EnqueueOptions, JobId, Name

# A dependency: an existing job's id, or "ref:<name>" of an earlier item of the same batch.
DependencyRef = JobId | Annotated[str, Field(max_length=204)]

SEED_EXAMPLE_JOB: dict[str, Any] = {
    "job_type": "emails",
    "payload": {"to": "user@example.com", "subject": "Hi", "body": "Hello"},
    "queue_name": "default",
    "max_tries": 3,
}


class JobHead(BaseModel):
    """What a job is: its type and payload (declared first, so they lead in the schema)."""

    job_type: Name = Field(description="Which handler runs the job.")
    payload: dict[str, Any] = Field(
        default_factory=dict, description="A JSON object handed to the handler."
    )


class JobIn(EnqueueOptions, JobHead):
    """One job to enqueue: the seed's four fields, plus the enqueue options that every client
    shares (worker.job_checks.EnqueueOptions), and a batch item's `ref`."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [SEED_EXAMPLE_JOB]},
    )

    # in a batch, a dependency may also name an earlier item
    depends_on: list[DependencyRef] | None = Field(  # type: ignore[assignment]
        default=None,
        max_length=MAX_DEPENDENCIES,
        description="Job ids this job waits for; in a batch also 'ref:<name>' of earlier items.",
    )
    ref: Name | None = Field(
        default=None,
        description="In a batch: a name later items can depend on as 'ref:<name>'.",
    )


class BatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "jobs": [
                        SEED_EXAMPLE_JOB,
                        {"job_type": "noop", "payload": {}, "priority": 5, "delay_seconds": 10},
                    ]
                }
            ]
        },
    )

    jobs: list[JobIn] = Field(min_length=1, description="Enqueued in one transaction.")
    on_complete: JobIn | None = Field(
        default=None,
        description="Enqueued once every job of the batch is terminal, whatever the outcomes; "
        "its payload gains `batch_id` and `counts` (jobs by status).",
    )


class JobOut(BaseModel):
    id: int
    queue_name: str
    job_type: str
    payload: dict[str, Any]
    status: JobStatus
    priority: int
    run_at: datetime
    attempts: int
    max_tries: int
    last_error: str | None = None
    result: Any = None
    idempotency_key: str | None = None
    timeout_seconds: float | None = None
    unique_key: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: UUID | None = None
    batch_id: int | None = None
    depends_on: list[int] | None = Field(default=None, description="The jobs it waits for.")
    progress: float | None = Field(default=None, description="0..1, as the handler reported.")
    progress_message: str | None = None


class BatchItem(BaseModel):
    id: int
    status: JobStatus
    created: bool = Field(description="False when an idempotency key matched an existing job.")


class BatchOut(BaseModel):
    """Compact, since the client already holds the jobs: ids in input order; a duplicate's id
    is the existing job's (GET /jobs/{id} for the rest)."""

    created: int
    duplicates: int
    jobs: list[BatchItem]
    batch_id: int | None = Field(
        default=None, description="Set when the batch has `on_complete`: GET /batches/{id}."
    )


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class Count(BaseModel):
    count: int | None
    kind: CountKind = Field(
        description=(
            "exact: counted; at_least: counting stopped at the bound; "
            "estimate: from PostgreSQL's planner statistics; unknown: no statistics yet."
        )
    )


class QueueDepthOut(BaseModel):
    ready: Count = Field(description="Pending jobs whose run_at has come.")
    scheduled: Count = Field(description="Pending jobs waiting for a later run_at.")
    running: int
    oldest_ready_age_seconds: float | None = Field(
        description="How long the longest-waiting ready job has been runnable."
    )
    workers: int = Field(description="Live workers that serve this queue.")


class QueueOut(QueueDepthOut):
    queue_name: str


class QueuesOut(BaseModel):
    queues: list[QueueOut]
    truncated: bool = Field(description="True when there were too many queues to list.")


class StatsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "total": {"count": 1203, "kind": "exact"},
                    "by_status": {
                        "pending": {"count": 17, "kind": "exact"},
                        "running": {"count": 3, "kind": "exact"},
                        "completed": {"count": 1180, "kind": "exact"},
                        "failed": {"count": 2, "kind": "exact"},
                        "cancelled": {"count": 1, "kind": "exact"},
                        "blocked": {"count": 0, "kind": "exact"},
                    },
                    "by_queue": [],
                    "oldest_pending_age_seconds": 4.2,
                    "done_last_minute": {"count": 120, "kind": "exact"},
                    "count_bound": 10000,
                }
            ]
        }
    )

    total: Count
    by_status: dict[JobStatus, Count]
    by_queue: list[QueueOut]
    oldest_pending_age_seconds: float | None = Field(
        description="Age of the longest-waiting ready job across all queues."
    )
    done_last_minute: Count = Field(description="Jobs that finished in the last 60 seconds.")
    count_bound: int = Field(description="Counting stops here; larger numbers are estimates.")


class InFlightJob(BaseModel):
    id: int
    job_type: str
    queue_name: str
    attempts: int
    started_at: datetime | None


class WorkerOut(BaseModel):
    id: str
    name: str
    queues: list[str]
    concurrency: int
    in_flight: int
    started_at: datetime
    heartbeat_at: datetime
    lease_expires_at: datetime = Field(description="Renewed by each heartbeat.")
    jobs: list[InFlightJob]


class WorkersOut(BaseModel):
    workers: list[WorkerOut]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    database: str
    schema_version: int | None
    expected_schema_version: int
