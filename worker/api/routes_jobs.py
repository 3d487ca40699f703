"""Enqueue (one or a batch), list, look up, cancel and retry jobs."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response
from fastapi.responses import JSONResponse

from worker.api.auth import any_token, queue_router
from worker.api.models import (
    SEED_EXAMPLE_JOB,
    BatchIn,
    BatchOut,
    JobIn,
    JobOut,
    JobPage,
    JobStatus,
)
from worker.api.models_attempts import JobDetail
from worker.api.state import State
from worker.api.validation import InputError, TextParam
from worker.api.workflows import (
    create_dependent_job,
    create_workflow_batch,
    needs_workflow,
    needs_workflow_batch,
)
from worker.db import attempts
from worker.db.errors import JobNotFound
from worker.db.job_lists import fill_dependencies
from worker.db.job_pages import list_jobs_bounded
from worker.db.jobs import cancel_job, get_job, retry_job
from worker.settings import ApiSettings

BIGINT_MAX = 2**63 - 1

MAX_WAIT_SECONDS = 60.0

JobId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="The job's id.")]

ENQUEUE_EXAMPLES: dict[str, Any] = {
    "seed": {"summary": "The seed's README example", "value": SEED_EXAMPLE_JOB},
    "scheduled": {
        "summary": "Later, with a priority and an idempotency key",
        "value": {
            "job_type": "report_generation",
            "payload": {"report_type": "daily"},
            "priority": 10,
            "delay_seconds": 60,
            "idempotency_key": "daily-report-2024-06-01",
        },
    },
}

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "A token is set and the bearer token is missing or wrong."},
    403: {"description": "The token's scope does not allow this request."},
    422: {"description": "A field is wrong; `detail[].loc` names it."},
}


def encode_cursor(job_id: int) -> str:
    return base64.urlsafe_b64encode(str(job_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    bad = InputError(422, ("query", "cursor"), "is not a cursor from this API", "value_error")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        job_id = int(text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise bad from exc
    if not text.isdigit() or not 1 <= job_id <= BIGINT_MAX:
        raise bad
    return job_id


async def create_job(
    job: Annotated[JobIn, Body(openapi_examples=ENQUEUE_EXAMPLES)],
    response: Response,
    state: State,
) -> Any:
    if needs_workflow(job):
        return await create_dependent_job(job, response, state)
    created_job, created = await state.enqueue.one(job)
    state.metrics.count_enqueued(created_job.queue_name, created)
    if not created:
        response.status_code = 200
    return created_job


async def create_jobs(batch: BatchIn, state: State) -> Any:
    if needs_workflow_batch(batch):
        return await create_workflow_batch(batch, state)
    pairs = await state.enqueue.batch(batch.jobs)
    state.metrics.count_enqueued_many(pairs)
    items = [
        {"id": job.id, "status": job.status, "created": was_created} for job, was_created in pairs
    ]
    created = sum(was_created for _, was_created in pairs)
    body = {"created": created, "duplicates": len(pairs) - created, "jobs": items}
    # Already BatchOut's shape, from the database's own values: skip validating up to
    # a thousand items again on the way out.
    return JSONResponse(body, status_code=201 if created else 200)


async def list_jobs(
    state: State,
    status: Annotated[
        list[JobStatus] | None, Query(description="Repeat to match any of several.")
    ] = None,
    queue_name: Annotated[TextParam | None, Query()] = None,
    job_type: Annotated[TextParam | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` of the previous page.")
    ] = None,
) -> Any:
    before_id = decode_cursor(cursor) if cursor else None
    async with state.read_connection() as conn:
        # the page ends early once its payloads and results reach JOBQUEUE_API_MAX_LIST_BYTES
        jobs, cut = await list_jobs_bounded(
            conn,
            statuses=[s.value for s in status] if status else None,
            queue_name=queue_name,
            job_type=job_type,
            before_id=before_id,
            limit=limit,
            max_bytes=state.settings.api_max_list_bytes,
        )
        await fill_dependencies(conn, jobs)  # as GET /jobs/{id} shows them
    next_cursor = encode_cursor(jobs[-1].id) if jobs and (cut or len(jobs) == limit) else None
    return {"jobs": jobs, "next_cursor": next_cursor}


async def show_job(
    job_id: JobId,
    state: State,
    wait_seconds: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Answer as soon as the job is terminal, or after this many seconds.",
        ),
    ] = 0,
) -> Any:
    if wait_seconds > 0:
        job = await state.waiters.wait(state.require_pool(), job_id, wait_seconds)
    else:
        job = await get_job(state.require_pool(), job_id)
    if job is None:
        raise JobNotFound(job_id)
    return await attempts.job_detail(state.require_pool(), job)


async def cancel(job_id: JobId, state: State) -> Any:
    return await cancel_job(state.require_pool(), job_id)


async def retry(job_id: JobId, state: State) -> Any:
    return await retry_job(state.require_pool(), job_id)


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No job has this id."}}


def jobs_router(settings: ApiSettings) -> APIRouter:
    """The routes, with what depends on settings: the token and the body size limits."""
    router = queue_router(any_token(settings), "jobs", ERRORS)
    router.add_api_route(
        "/jobs",
        create_job,
        methods=["POST"],
        status_code=201,
        response_model=JobOut,
        summary="Enqueue a job",
        responses={
            200: {"model": JobOut, "description": "Idempotency key seen before: the first job."},
            413: {"description": "The payload is over JOBQUEUE_API_MAX_PAYLOAD_BYTES."},
        },
    )
    router.add_api_route(
        "/jobs/batch",
        create_jobs,
        methods=["POST"],
        status_code=201,
        response_model=BatchOut,
        summary="Enqueue many jobs in one transaction",
        responses={
            200: {"model": BatchOut, "description": "Every job was a duplicate."},
            413: {"description": "A payload or the whole body is over its limit."},
        },
    )
    router.add_api_route(
        "/jobs",
        list_jobs,
        methods=["GET"],
        response_model=JobPage,
        summary="List jobs, newest first",
    )
    router.add_api_route(
        "/jobs/{job_id}",
        show_job,
        methods=["GET"],
        response_model=JobDetail,
        summary="One job",
        responses=NOT_FOUND,
    )
    router.add_api_route(
        "/jobs/{job_id}/cancel",
        cancel,
        methods=["POST"],
        response_model=JobOut,
        summary="Cancel a pending or running job",
        responses={**NOT_FOUND, 409: {"description": "Finished."}},
    )
    router.add_api_route(
        "/jobs/{job_id}/retry",
        retry,
        methods=["POST"],
        response_model=JobOut,
        summary="Run a failed or cancelled job again",
        responses={**NOT_FOUND, 409: {"description": "Not failed or cancelled."}},
    )
    return router
