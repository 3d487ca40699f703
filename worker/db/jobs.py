"""Jobs as users see them: enqueue (one or many, idempotent), look up, cancel, retry.

Every function takes an executor: an asyncpg Pool, or a Connection so that callers can enqueue
inside their own transaction.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from worker.db import sql_files
from worker.db.errors import JobNotFound, JobStateConflict
from worker.job_checks import check_schedule, queue_name_problem

Executor = asyncpg.Connection | asyncpg.Pool | PoolConnectionProxy


_sql = sql_files.statements("jobs")


def _json_value(value: Any) -> Any:
    """jsonb from a connection without the project's codec arrives as text. With the codec, a
    result that is a JSON string arrives as that string, which is not JSON text itself (a
    task returning "Hello, Ada!" made get_job raise): kept as it is."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


@dataclass
class Job:
    id: int
    queue_name: str
    job_type: str
    payload: dict[str, Any]
    status: str
    priority: int
    run_at: datetime
    attempts: int
    max_tries: int
    last_error: str | None
    result: Any
    idempotency_key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: UUID | None
    timeout_seconds: float | None = None
    unique_key: str | None = None
    # --- workflows (migrations 0004 and 0007)
    batch_id: int | None = None
    progress: float | None = None
    progress_message: str | None = None
    dependencies_left: int | None = None  # set only on jobs enqueued with depends_on
    depends_on: list[int] | None = None  # not a column: filled from job_dependencies on demand

    @classmethod
    def from_record(cls, record: asyncpg.Record | Mapping[str, Any]) -> Job:
        values = {name: record[name] for name in _JOB_FIELDS if name not in _OPTIONAL_FIELDS}
        values.update({name: record.get(name) for name in _OPTIONAL_FIELDS})
        values["payload"] = _json_value(values["payload"])
        values["result"] = _json_value(values["result"])
        if values["progress"] is not None:  # a `real` column: show 0.1, not 0.10000000149
            values["progress"] = round(values["progress"], 6)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _JOB_FIELDS:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, UUID):
                value = str(value)
            out[name] = value
        return out


_JOB_FIELDS = tuple(f.name for f in fields(Job))
# newer columns, which rows from older shapes of a statement may lack
_OPTIONAL_FIELDS = frozenset(
    {"unique_key", "batch_id", "progress", "progress_message", "dependencies_left", "depends_on"}
)


@dataclass
class NewJob:
    job_type: str
    payload: dict[str, Any] = field(default_factory=dict)
    queue_name: str = "default"
    priority: int = 0
    run_at: datetime | None = None
    delay_seconds: float | None = None
    max_tries: int = 3
    idempotency_key: str | None = None
    timeout_seconds: float | None = None
    unique_key: str | None = None  # enqueued by worker.db.unique_jobs, one at a time
    concurrency_key: str | None = None  # per-key limits (flow control)
    # The payload's JSON text when the caller has it already (the API measured it): saves
    # serialising it twice. It must encode `payload`.
    payload_json: str | None = field(default=None, repr=False, compare=False)
    # The W3C traceparent of the span that enqueued it (worker.tracing), when tracing is on.
    traceparent: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.job_type:
            raise ValueError("job_type must not be empty")
        if self.queue_name != "default" and queue_name_problem(self.queue_name):
            raise ValueError(f"queue_name {queue_name_problem(self.queue_name)}")
        if not isinstance(self.payload, dict):
            raise ValueError("payload must be a JSON object")
        if self.max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        check_schedule(self.run_at, self.delay_seconds)
        if self.delay_seconds is not None and not (
            math.isfinite(self.delay_seconds) and self.delay_seconds >= 0
        ):
            raise ValueError("delay_seconds must be a finite number >= 0")
        if self.timeout_seconds is not None and not (
            math.isfinite(self.timeout_seconds) and self.timeout_seconds > 0
        ):
            raise ValueError("timeout_seconds must be a finite number > 0")
        if self.run_at is not None and self.run_at.tzinfo is None:
            raise ValueError("run_at must carry a time zone")


# One encoder for every payload: json.dumps builds a new one per call when given options.
_payload_json = json.JSONEncoder(allow_nan=False).encode


def _all_none(values: list[Any]) -> bool:
    return values.count(None) == len(values)


def _or_null(values: list[Any]) -> list[Any] | None:
    """An optional column that no job sets travels as one NULL (insert_jobs says why)."""
    return None if _all_none(values) else values


def _shared(values: list[Any]) -> tuple[list[Any] | None, Any]:
    """A column as (its array, None), or as (None, the value) when every job has the same."""
    first = values[0]
    return (None, first) if values.count(first) == len(values) else (values, None)


def _arguments(jobs: Sequence[NewJob]) -> list[Any]:
    """insert_jobs' parameters for a non-empty list of jobs, in its order."""
    job_types, job_type = _shared([job.job_type for job in jobs])
    queue_names, queue_name = _shared([job.queue_name for job in jobs])
    priorities, priority = _shared([job.priority for job in jobs])
    max_tries, tries = _shared([job.max_tries for job in jobs])
    payloads = ",".join(
        job.payload_json if job.payload_json is not None else _payload_json(job.payload)
        for job in jobs
    )
    return [
        job_types,
        f"[{payloads}]",
        queue_names,
        priorities,
        _or_null([job.run_at for job in jobs]),
        _or_null([job.delay_seconds for job in jobs]),
        max_tries,
        _or_null([job.idempotency_key for job in jobs]),
        _or_null([job.timeout_seconds for job in jobs]),
        _or_null([job.concurrency_key for job in jobs]),
        [job.traceparent for job in jobs] if any(job.traceparent for job in jobs) else None,
        job_type,
        queue_name,
        priority,
        tries,
    ]


async def insert_planned(
    executor: Executor,
    jobs: Sequence[NewJob],
    plan: Sequence[tuple[int, str, int | None, bool, str | None]],
    batch_id: int | None,
) -> int:
    """Insert jobs whose (id, status, dependencies_left, has_dependents, last_error) are
    decided already (worker.db.workflows' batches); returns how many went in, fewer when
    another transaction holds one of their keys (the caller starts over)."""
    ids, statuses, left, dependents, errors = (list(column) for column in zip(*plan, strict=True))
    statuses_array, status = _shared(statuses)
    left_array, left_value = _shared(left)
    dependents_array, dependents_value = _shared(dependents)
    rows = await executor.fetch(
        _sql("insert_planned_jobs"),
        *_arguments(jobs),
        ids,
        statuses_array,
        left_array,
        dependents_array,
        status,
        left_value,
        dependents_value,
        _or_null(errors),
        _or_null([job.unique_key for job in jobs]),
        batch_id,
    )
    return len(rows)


class Enqueued(NamedTuple):
    """What a batch's answer needs of a job: insert_jobs_brief's row, not the whole job (a
    tuple: a batch makes a thousand, and a tuple is quicker to make than a dataclass)."""

    id: int
    queue_name: str
    status: str

    @classmethod
    def from_record(cls, record: asyncpg.Record | Mapping[str, Any]) -> Enqueued:
        return cls(record["id"], record["queue_name"], record["status"])


Row = asyncpg.Record | Mapping[str, Any]
_by_id = operator.itemgetter("id")
Built = TypeVar("Built", Job, Enqueued)


def _pair_with_inputs(
    jobs: Sequence[NewJob],
    rows: Sequence[Row],
    build: Callable[[Row], Any] = Job.from_record,
) -> list[tuple[Any, bool]] | None:
    """Match rows to inputs in order, building one `build(row)` per row (whole or brief rows:
    only created, id and idempotency_key are read); None when a key's row is missing (a
    concurrent insert)."""
    if _all_none([new.idempotency_key for new in jobs]):  # most batches: every row is new
        if len(rows) != len(jobs):
            return None
        return [(build(row), True) for row in sorted(rows, key=_by_id)]
    inserted = sorted((r for r in rows if r["created"]), key=_by_id)
    existing = {r["idempotency_key"]: build(r) for r in rows if not r["created"]}
    next_inserted = iter(inserted)
    seen: dict[str, Any] = {}
    out: list[tuple[Any, bool]] = []
    for new in jobs:
        key = new.idempotency_key
        if key is not None and key in existing:
            out.append((existing[key], False))
        elif key is not None and key in seen:
            out.append((seen[key], False))
        else:
            row = next(next_inserted, None)
            if row is None or row["idempotency_key"] != key:
                return None
            built = build(row)
            if key is not None:
                seen[key] = built
            out.append((built, True))
    return out


async def _insert_and_pair(
    executor: Executor, jobs: Sequence[NewJob], statement: str, build: Callable[[Row], Built]
) -> list[tuple[Built, bool]]:
    """Insert jobs in one statement (one NOTIFY per queue) and pair its rows with the inputs."""
    if not jobs:
        return []
    if not _all_none([job.unique_key for job in jobs]):
        from worker.db import unique_jobs  # it builds on this module

        async def plain(others: Sequence[NewJob]) -> list[tuple[Built, bool]]:
            return await _insert_and_pair(executor, others, statement, build)

        return await unique_jobs.enqueue_in_order(executor, jobs, plain, build)
    rows = await executor.fetch(_sql(statement), *_arguments(jobs))
    paired = _pair_with_inputs(jobs, rows, build)
    if paired is None:
        # Another transaction committed one of our keys while this statement ran: its row was
        # invisible to our snapshot, so read the keys again (whole rows suit either build).
        keys = [job.idempotency_key for job in jobs if job.idempotency_key is not None]
        again = await executor.fetch(_sql("jobs_by_idempotency_keys"), keys)
        ours = [r for r in rows if r["created"]]
        ours_keys = {r["idempotency_key"] for r in ours}
        rows = ours + [r for r in again if r["idempotency_key"] not in ours_keys]
        paired = _pair_with_inputs(jobs, rows, build)
        if paired is None:  # pragma: no cover - would mean a row vanished between statements
            raise RuntimeError("could not match enqueued jobs to their inputs")
    return paired


async def enqueue_many(executor: Executor, jobs: Sequence[NewJob]) -> list[tuple[Job, bool]]:
    """Insert jobs in one statement; order is kept.

    Each pair's bool is False when the idempotency key already existed and that job is returned.
    """
    return await _insert_and_pair(executor, jobs, "insert_jobs", Job.from_record)


async def enqueue_many_brief(
    executor: Executor, jobs: Sequence[NewJob]
) -> list[tuple[Enqueued, bool]]:
    """enqueue_many for callers that need only each job's id, queue and status: much cheaper
    for large batches."""
    return await _insert_and_pair(executor, jobs, "insert_jobs_brief", Enqueued.from_record)


async def enqueue(executor: Executor, job: NewJob) -> tuple[Job, bool]:
    (pair,) = await enqueue_many(executor, [job])
    return pair


async def get_job(executor: Executor, job_id: int) -> Job | None:
    row = await executor.fetchrow(_sql("get_job"), job_id)
    return Job.from_record(row) if row is not None else None


async def _transition(executor: Executor, statement: str, job_id: int, action: str) -> Job:
    row = await executor.fetchrow(_sql(statement), job_id)
    if row is not None:
        return Job.from_record(row)
    current = await get_job(executor, job_id)
    if current is None:
        raise JobNotFound(job_id)
    raise JobStateConflict(job_id, current.status, action)


async def cancel_job(executor: Executor, job_id: int) -> Job:
    """pending -> cancelled; running -> cancelled, and its worker stops the handler."""
    return await _transition(executor, "cancel_job", job_id, "cancel")


async def retry_job(executor: Executor, job_id: int) -> Job:
    """failed or cancelled -> pending now, with at least one try left."""
    return await _transition(executor, "retry_job", job_id, "retry")
