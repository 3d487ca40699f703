"""Workflows in the data layer: enqueue jobs that depend on others, batches whose callback runs
once every job is terminal, and reading a batch back.

The rules live in SQL (migrations/0007_workflows.sql) so that the API, the Python clients and
plain SQL callers share them; this module only feeds them. A dependency is an existing job's id
or an earlier item of the same batch, so a cycle cannot be written down.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from worker.db import sql_files
from worker.db.jobs import Executor, NewJob

_sql = sql_files.statements("workflows")
_json = json.JSONEncoder(allow_nan=False).encode


class MissingDependency(Exception):
    """A dependency names a job that does not exist; `id` is that job's id."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job has id {job_id}")
        self.id = job_id


class InvalidJobField(Exception):
    """jobqueue_enqueue refused a field; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class WorkflowItem:
    """One job of a workflow batch: its spec, the existing jobs it depends on, and the indexes
    of the earlier items it depends on."""

    job: NewJob
    depends_on: list[int] = field(default_factory=list)
    depends_on_items: list[int] = field(default_factory=list)
    run_on_failure: bool = False


@dataclass(frozen=True)
class BatchEnqueued:
    batch_id: int | None
    callback_job_id: int | None
    # per item, in input order: id, status, created (False for a repeated idempotency key)
    jobs: list[tuple[int, str, bool]]


@dataclass(frozen=True)
class Batch:
    id: int
    total: int
    finished: int
    counts: dict[str, int]
    callback_job_id: int | None
    created_at: datetime
    completed_at: datetime | None


def _payload_text(job: NewJob) -> str:
    return job.payload_json if job.payload_json is not None else _json(job.payload)


def spec_json(job: NewJob) -> str:
    """A job spec as batches.on_complete stores it."""
    spec: dict[str, Any] = {
        "job_type": job.job_type,
        "payload": job.payload,
        "queue_name": job.queue_name,
        "priority": job.priority,
        "max_tries": job.max_tries,
        "run_at": job.run_at.isoformat() if job.run_at else None,
        "delay_seconds": job.delay_seconds,
        "idempotency_key": job.idempotency_key,
        "timeout_seconds": job.timeout_seconds,
        "concurrency_key": job.concurrency_key,
    }
    return _json({k: v for k, v in spec.items() if v is not None})


def _translate(exc: asyncpg.PostgresError) -> Exception:
    """The SQL functions' refusals as this module's errors; anything else unchanged."""
    if isinstance(exc, asyncpg.ForeignKeyViolationError) and exc.column_name == "depends_on":
        return MissingDependency(int(str(exc.detail).rsplit(":", 1)[-1]))
    if isinstance(exc, asyncpg.InvalidParameterValueError) and exc.column_name:
        return InvalidJobField(exc.column_name, str(exc))
    return exc


async def enqueue_job(
    executor: Executor,
    job: NewJob,
    depends_on: Sequence[int] = (),
    run_on_failure: bool = False,
) -> int:
    """One job through jobqueue_enqueue(); blocked until its dependencies complete."""
    try:
        return int(
            await executor.fetchval(
                _sql("jobs_enqueue"),
                job.job_type,
                _payload_text(job),
                job.queue_name,
                job.priority,
                job.run_at,
                job.max_tries,
                job.idempotency_key,
                job.timeout_seconds,
                list(depends_on) or None,
                run_on_failure,
                job.delay_seconds,
                job.concurrency_key,
            )
        )
    except asyncpg.PostgresError as exc:
        raise _translate(exc) from exc


async def enqueue_batch(
    conn: asyncpg.Connection,
    items: Sequence[WorkflowItem],
    on_complete: NewJob | None = None,
) -> BatchEnqueued:
    """Every item in the caller's transaction, in order, so that an item can depend on the ids
    earlier items got. With `on_complete`, the batch is tracked and its callback is enqueued
    once all its jobs are terminal (at once if they already are)."""
    external = sorted({job_id for item in items for job_id in item.depends_on})
    referenced = {index for item in items for index in item.depends_on_items}
    existing = await keys_taken(
        conn, [item.job.idempotency_key for item in items if item.job.idempotency_key]
    )
    try:
        if external:
            await conn.fetchval(_sql("dependencies_lock"), external, "jobs")
        batch_id = None
        if on_complete is not None:
            batch_id = await conn.fetchval(_sql("batches_insert"), spec_json(on_complete))
        ids: list[int] = []
        statement = _sql("jobs_insert")
        for index, item in enumerate(items):
            job = item.job
            dependencies = [*item.depends_on, *(ids[i] for i in item.depends_on_items)]
            ids.append(
                await conn.fetchval(
                    statement,
                    job.job_type,
                    _payload_text(job),
                    job.queue_name,
                    job.priority,
                    job.run_at,
                    job.delay_seconds,
                    job.max_tries,
                    job.idempotency_key,
                    job.timeout_seconds,
                    dependencies or None,
                    item.run_on_failure,
                    batch_id,
                    index in referenced,
                    job.concurrency_key,
                )
            )
        callback = None
        if batch_id is not None:
            callback = await conn.fetchval(_sql("batches_close"), batch_id)
    except asyncpg.PostgresError as exc:
        raise _translate(exc) from exc
    statuses = {
        row["id"]: row["status"] for row in await conn.fetch(_sql("jobs_status_brief"), ids)
    }
    seen: set[int] = set()
    out = []
    for item, job_id in zip(items, ids, strict=True):
        created = job_id not in seen and item.job.idempotency_key not in existing
        seen.add(job_id)
        out.append((job_id, statuses[job_id], created))
    return BatchEnqueued(batch_id, callback, out)


async def keys_taken(executor: Executor, keys: Sequence[str]) -> set[str]:
    """Which of these idempotency keys some job holds already."""
    if not keys:
        return set()
    return {row[0] for row in await executor.fetch(_sql("jobs_existing_keys"), list(keys))}


async def get_batch(executor: Executor, batch_id: int) -> Batch | None:
    row = await executor.fetchrow(_sql("batches_get"), batch_id)
    if row is None:
        return None
    return Batch(
        id=row["id"],
        total=row["total"],
        finished=row["finished"],
        counts=json.loads(row["counts"]),
        callback_job_id=row["callback_job_id"],
        created_at=row["created_at"],
        completed_at=row["completed_at"],
    )


async def dependencies_of(executor: Executor, job_id: int) -> list[int]:
    return [row[0] for row in await executor.fetch(_sql("dependencies_of_job"), job_id)]
