"""Enqueue a job that carries a unique_key: one statement per job, outside group commit, since
each needs its own answer to "which job holds this key?".

Race-free by the partial unique index: of concurrent enqueues with one key, PostgreSQL lets
exactly one insert; the others wait for it to commit, insert nothing, and then read it (each
statement here takes a fresh snapshot, so the winner's row is visible).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from worker.db import sql_files
from worker.db.jobs import Executor, Job, NewJob

_sql = sql_files.statements("unique_jobs")

# Each round loses only when the key's holder finished between our two statements.
MAX_ROUNDS = 10
_payload_json = json.JSONEncoder(allow_nan=False).encode


async def enqueue_unique(executor: Executor, job: NewJob) -> tuple[Job, bool]:
    """The new job and True, or the job already holding the key (or idempotency key) and
    False."""
    row, created = await _enqueue_row(executor, job)
    return Job.from_record(row), created


async def enqueue_in_order(
    executor: Executor,
    jobs: Sequence[NewJob],
    plain: Callable[[Sequence[NewJob]], Awaitable[list[tuple[Any, bool]]]],
    build: Callable[[asyncpg.Record], Any],
) -> list[tuple[Any, bool]]:
    """Jobs without a unique key through `plain` (one statement), the others one by one;
    the answer is in input order.

    Keyed jobs are inserted in key order, not in the batch's order: each insert takes the
    key's entry in the unique index until commit, so two batches that share keys in opposite
    orders would otherwise wait on each other in a cycle and one would die as a deadlock.
    Python's sort is stable, so of two items with one key the first still creates the job."""
    plain_jobs = [job for job in jobs if job.unique_key is None]
    plain_pairs = iter(await plain(plain_jobs) if plain_jobs else [])
    keyed = sorted(
        (i for i, job in enumerate(jobs) if job.unique_key is not None),
        key=lambda i: jobs[i].unique_key or "",
    )
    keyed_pairs: dict[int, tuple[Any, bool]] = {}
    for i in keyed:
        row, created = await _enqueue_row(executor, jobs[i])
        keyed_pairs[i] = (build(row), created)
    return [
        next(plain_pairs) if job.unique_key is None else keyed_pairs[i]
        for i, job in enumerate(jobs)
    ]


async def _enqueue_row(executor: Executor, job: NewJob) -> tuple[asyncpg.Record, bool]:
    assert job.unique_key is not None
    payload = job.payload_json if job.payload_json is not None else _payload_json(job.payload)
    for _ in range(MAX_ROUNDS):
        row = await executor.fetchrow(
            _sql("insert_unique_job"),
            job.job_type,
            payload,
            job.queue_name,
            job.priority,
            job.run_at,
            job.delay_seconds,
            job.max_tries,
            job.idempotency_key,
            job.timeout_seconds,
            job.unique_key,
            job.concurrency_key,
            job.traceparent,
        )
        if row is not None:
            return row, True
        if job.idempotency_key is not None:
            row = await executor.fetchrow(_sql("job_by_idempotency_key"), job.idempotency_key)
            if row is not None:
                return row, False
        row = await executor.fetchrow(_sql("active_job_by_unique_key"), job.unique_key)
        if row is not None:
            return row, False
    raise RuntimeError(f"unique_key {job.unique_key!r}: its holder kept changing; try again")
