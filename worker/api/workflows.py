"""Enqueueing workflows through the API: a job with `depends_on`, and a batch whose items
depend on each other (`ref`) or that carries `on_complete`.

Plain jobs and plain batches never come here: they keep the group-commit and single-statement
paths of enqueue.py. Field checks are EnqueueService.prepare's, so both paths refuse the same
input the same way; what only the database knows (does job 12 exist?) comes back as a 422
naming the item and the position in its `depends_on`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from worker import tracing
from worker.api.idempotency import check_reused_keys
from worker.api.models import BatchIn, JobIn
from worker.api.state import ApiState
from worker.api.validation import InputError, Loc
from worker.db.errors import JobNotFound
from worker.db.jobs import get_job
from worker.db.workflows import (
    MissingDependency,
    WorkflowItem,
    enqueue_batch,
)

REF_PREFIX = "ref:"


@dataclass(frozen=True)
class Dependencies:
    """One item's dependencies: existing job ids, and indexes of earlier items."""

    ids: list[int]
    items: list[int]


def needs_workflow(job: JobIn) -> bool:
    return bool(job.depends_on) or job.ref is not None


def needs_workflow_batch(batch: BatchIn) -> bool:
    return batch.on_complete is not None or any(needs_workflow(job) for job in batch.jobs)


def resolve_refs(jobs: Sequence[JobIn], loc: Loc = ("body", "jobs")) -> list[Dependencies]:
    """Each item's dependencies, refs turned into item indexes. A ref must name an earlier item
    (so no cycle can be written) and be defined once."""
    defined: dict[str, int] = {}
    out = []
    for index, job in enumerate(jobs):
        ids: list[int] = []
        items: list[int] = []
        for position, dependency in enumerate(job.depends_on or []):
            where = (*loc, index, "depends_on", position)
            if isinstance(dependency, int):
                ids.append(dependency)
                continue
            if not dependency.startswith(REF_PREFIX):
                raise InputError(
                    422, where, "must be a job id or 'ref:<name>' of an earlier item", "value_error"
                )
            name = dependency[len(REF_PREFIX) :]
            if name not in defined:
                raise InputError(
                    422,
                    where,
                    f"unknown ref {name!r}: an item can depend only on earlier items of its batch",
                    "unknown_ref",
                )
            items.append(defined[name])
        if job.ref is not None:
            if job.ref in defined:
                raise InputError(
                    422,
                    (*loc, index, "ref"),
                    f"ref {job.ref!r} is used twice (items {defined[job.ref]} and {index})",
                    "duplicate_ref",
                )
            defined[job.ref] = index
        out.append(Dependencies(ids, items))
    return out


def _missing(exc: MissingDependency, jobs: Sequence[JobIn], single: bool) -> InputError:
    """Which item and position named the job that does not exist."""
    for index, job in enumerate(jobs):
        for position, dependency in enumerate(job.depends_on or []):
            if dependency == exc.id:
                item: Loc = ("body",) if single else ("body", "jobs", index)
                return InputError(
                    422,
                    (*item, "depends_on", position),
                    f"item {index} depends on job {exc.id}, which does not exist",
                    "missing_dependency",
                )
    return InputError(422, ("body",), str(exc), "missing_dependency")


async def create_dependent_job(job: JobIn, response: Response, state: ApiState) -> Any:
    """POST /jobs with depends_on: blocked until its dependencies complete."""
    if job.ref is not None:
        raise InputError(
            422, ("body", "ref"), "names items of a batch: use POST /jobs/batch", "value_error"
        )
    for position, dependency in enumerate(job.depends_on or []):
        if not isinstance(dependency, int):
            raise InputError(
                422,
                ("body", "depends_on", position),
                "must be a job id; 'ref:<name>' names items of a batch (POST /jobs/batch)",
                "value_error",
            )
    ids = [dependency for dependency in job.depends_on or [] if isinstance(dependency, int)]
    with tracing.enqueue_span(job.queue_name) as span:
        # a batch of one: the same statements, so unique_key and the trace context hold here too
        item = WorkflowItem(
            state.enqueue.prepare(job, ("body",), span.traceparent),
            depends_on=ids,
            run_on_failure=job.run_on_failure,
        )
        async with state.connection() as conn:
            try:
                async with conn.transaction():
                    ((job_id, _, created),) = (await enqueue_batch(conn, [item])).jobs
                    await check_reused_keys(conn, [(("body",), item.job)], [created])
            except MissingDependency as exc:
                raise _missing(exc, [job], single=True) from None
            created_job = await get_job(conn, job_id)
        if created_job is None:  # pruned between two statements: only with retention near zero
            raise JobNotFound(job_id)
        span.enqueued(job_id, created)
    state.metrics.count_enqueued(created_job.queue_name, created)
    response.status_code = 201 if created else 200
    return created_job


async def create_workflow_batch(batch: BatchIn, state: ApiState) -> Any:
    """POST /jobs/batch with refs, depends_on or on_complete: one transaction, in order."""
    state.enqueue.check_batch_size(batch.jobs)
    with tracing.enqueue_batch_span(batch.jobs) as span:  # as plain batches: one producer span
        return await _create_workflow_batch(batch, state, span.traceparent)


async def _create_workflow_batch(batch: BatchIn, state: ApiState, parent: str | None) -> Any:
    deps = resolve_refs(batch.jobs)
    items = [
        WorkflowItem(
            state.enqueue.prepare(job, ("body", "jobs", index), parent),
            depends_on=d.ids,
            depends_on_items=d.items,
            run_on_failure=job.run_on_failure,
        )
        for index, (job, d) in enumerate(zip(batch.jobs, deps, strict=True))
    ]
    on_complete = None
    if batch.on_complete is not None:
        if batch.on_complete.depends_on or batch.on_complete.ref:
            raise InputError(
                422,
                ("body", "on_complete", "depends_on"),
                "a callback waits for its batch; it takes no depends_on or ref",
                "value_error",
            )
        on_complete = state.enqueue.prepare(batch.on_complete, ("body", "on_complete"))
    async with state.connection() as conn, conn.transaction():
        try:
            enqueued = await enqueue_batch(conn, items, on_complete)
        except MissingDependency as exc:
            raise _missing(exc, batch.jobs, single=False) from None
        await check_reused_keys(
            conn,
            [(("body", "jobs", index), item.job) for index, item in enumerate(items)],
            [was_created for _, _, was_created in enqueued.jobs],
        )
    for item, (_, _, was_created) in zip(items, enqueued.jobs, strict=True):
        state.metrics.count_enqueued(item.job.queue_name, was_created)
    created = sum(was_created for _, _, was_created in enqueued.jobs)
    body = {
        "created": created,
        "duplicates": len(enqueued.jobs) - created,
        "jobs": [
            {"id": job_id, "status": status, "created": was_created}
            for job_id, status, was_created in enqueued.jobs
        ],
        "batch_id": enqueued.batch_id,
    }
    return JSONResponse(body, status_code=201 if created else 200)
