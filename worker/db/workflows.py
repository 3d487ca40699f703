"""Workflows in the data layer: enqueue jobs that depend on others, batches whose callback runs
once every job is terminal, and reading a batch back.

The rules live in SQL (migrations/0007_workflows.sql): jobqueue_enqueue for SQL callers and the
Python clients, jobqueue_jobs_finished for what follows a job's end. A batch from this module
goes in through batch_plan, which applies jobqueue_insert_job's rules to all its items at once
(tests/integration/test_workflows_batch_plan.py holds the two to the same rows). A dependency is
an existing job's id or an earlier item of the same batch, so a cycle cannot be written down.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from worker.db import batch_plan, sql_files
from worker.db.jobs import Executor, NewJob, insert_planned

_sql = sql_files.statements("workflows")
_json = json.JSONEncoder(allow_nan=False).encode
# A round is lost only when another transaction commits one of the batch's keys (idempotency
# or unique) between our look-up and our insert.
MAX_ROUNDS = 5


class MissingDependency(Exception):
    """A dependency names a job that does not exist; `id` is that job's id."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job has id {job_id}")
        self.id = job_id


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
    return exc


async def enqueue_job(
    conn: asyncpg.Connection,
    job: NewJob,
    depends_on: Sequence[int] = (),
    run_on_failure: bool = False,
) -> int:
    """One job that waits for `depends_on`: a batch of one, so the same rules and statements
    as enqueue_batch (SQL callers have jobqueue_enqueue, which worker.client also uses)."""
    item = WorkflowItem(job, list(depends_on), run_on_failure=run_on_failure)
    ((job_id, _, _),) = (await enqueue_batch(conn, [item])).jobs
    return job_id


async def enqueue_batch(
    conn: asyncpg.Connection,
    items: Sequence[WorkflowItem],
    on_complete: NewJob | None = None,
) -> BatchEnqueued:
    """Every item in the caller's transaction, in a fixed number of statements however many
    items there are (batch_plan applies the rules to all of them first). An item can depend on
    the ids earlier items get. With `on_complete`, the batch is tracked and its callback is
    enqueued once all its jobs are terminal (at once if they already are)."""
    for _ in range(MAX_ROUNDS):
        try:
            async with conn.transaction():  # a savepoint: a lost race leaves nothing behind
                return await _enqueue_batch_once(conn, items, on_complete)
        except _KeyRaced:
            continue  # the racing job is committed now, and the next round sees its key
        except asyncpg.PostgresError as exc:
            raise _translate(exc) from exc
    raise RuntimeError(f"enqueue_batch lost {MAX_ROUNDS} races for its keys in a row")


class _KeyRaced(Exception):
    """Another transaction took one of the batch's keys after we looked."""


async def _holders(
    conn: asyncpg.Connection, statement: str, keys: list[str | None]
) -> dict[str, int]:
    """Key -> the id of the job that holds it, for the keys some job holds."""
    wanted = [key for key in keys if key is not None]
    if not wanted:
        return {}
    return {row[0]: row[1] for row in await conn.fetch(_sql(statement), wanted)}


async def _enqueue_batch_once(
    conn: asyncpg.Connection, items: Sequence[WorkflowItem], on_complete: NewJob | None
) -> BatchEnqueued:
    specs = [
        batch_plan.ItemSpec(
            i.job.idempotency_key,
            i.depends_on,
            i.depends_on_items,
            i.run_on_failure,
            i.job.unique_key,
        )
        for i in items
    ]
    taken = await _holders(conn, "jobs_ids_by_keys", [i.job.idempotency_key for i in items])
    held = await _holders(conn, "jobs_ids_by_unique_keys", [i.job.unique_key for i in items])
    resolved = batch_plan.resolve(specs, taken, held)
    external = batch_plan.external_ids(specs, resolved)
    statuses: dict[int, str] = {}
    if external:  # locked in id order, and flagged as having dependents (see the function)
        locked = await conn.fetch(_sql("dependencies_lock_status"), external, "jobs")
        statuses = {row[0]: row[1] for row in locked}
    batch_id = None
    if on_complete is not None:
        batch_id = await conn.fetchval(_sql("batches_insert"), spec_json(on_complete))
    count = sum(1 for r in resolved if r.new)
    fresh = sorted(row[0] for row in await conn.fetch(_sql("jobs_new_ids"), count)) if count else []
    ids, rows = batch_plan.plan(specs, resolved, statuses, iter(fresh))
    if rows:
        jobs = [items[row.index].job for row in rows]
        planned = [
            (row.id, row.status, row.dependencies_left, row.has_dependents, row.last_error)
            for row in rows
        ]
        inserted = await insert_planned(conn, jobs, planned, batch_id)
        if inserted != len(rows):
            raise _KeyRaced()
        edges = [(d, row.id, row.run_on_failure) for row in rows for d in row.dependencies]
        if edges:
            await conn.execute(_sql("dependencies_insert"), *map(list, zip(*edges, strict=True)))
    callback = None
    if batch_id is not None:
        callback = await conn.fetchval(_sql("batches_close"), batch_id)
    # the new jobs' statuses are the plan's; only the jobs that held a key are read
    statuses_now = {row.id: row.status for row in rows}
    held_ids = [job_id for job_id, identity in zip(ids, resolved, strict=True) if not identity.new]
    if held_ids:
        found = await conn.fetch(_sql("jobs_status_brief"), held_ids)
        statuses_now.update({row["id"]: row["status"] for row in found})
    out = [
        (job_id, statuses_now[job_id], identity.new)  # created: not a job that held its key
        for job_id, identity in zip(ids, resolved, strict=True)
    ]
    return BatchEnqueued(batch_id, callback, out)


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
