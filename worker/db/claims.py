"""The worker's hot path in SQL: batch claims, fenced batched acknowledgements, releases and
the reconcile (registration and heartbeat are in worker.db.workers). Statements are prepared
once per connection by asyncpg's cache."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from worker.db import sql_files
from worker.db.errors import LAYOUT_SQLSTATE, LIVENESS_SQLSTATE, LayoutMismatch, LivenessLost

# older callers (tests, tools) import the registration from here
from worker.db.workers import register_worker as register_worker

# a plain connection, or one acquired from a pool
Conn = asyncpg.Connection | PoolConnectionProxy

# PostgreSQL prints jsonb as plain JSON text: raw_decode skips json.loads' checks (4x faster)
_decode_json = json.JSONDecoder().raw_decode


_sql = sql_files.statements("claims")

NOT_MIGRATED = (
    "the database's schema is older than this release (it has no storage layout check, or no "
    "ready ring); run jobqueue migrate with this release"
)


def row_count(status: str) -> int:
    """asyncpg's command tag, e.g. 'UPDATE 12' -> 12."""
    return int(status.rsplit(" ", 1)[-1])


class ClaimedJob(NamedTuple):
    """What a worker needs to run a job; field order follows claim_jobs' RETURNING."""

    id: int
    job_type: str
    payload: dict[str, Any]
    queue_name: str
    attempts: int
    max_tries: int
    timeout_seconds: float | None
    # from a queue with limits: its end frees room that only a new claim can use
    limited: bool = False
    traceparent: str | None = None  # the enqueue's W3C trace context (worker.tracing)


async def claim_jobs(
    conn: Conn,
    queues: Sequence[str],
    limit: int,
    worker_id: UUID,
    lease_seconds: float,
    lock_key: int | None = None,
) -> list[ClaimedJob]:
    """Claim up to `limit` pending jobs over `queues` in one statement, best first
    (priority DESC, run_at, id). With `lock_key`, only while that liveness lock is held:
    LivenessLost otherwise. LayoutMismatch when the database's storage layout is another."""
    try:
        rows = await conn.fetch(
            _sql("claim_jobs"), list(queues), limit, worker_id, lease_seconds, lock_key
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == LIVENESS_SQLSTATE:
            raise LivenessLost(str(exc)) from exc
        if exc.sqlstate == LAYOUT_SQLSTATE:
            message = f"{exc.message}; {exc.hint}" if exc.hint else exc.message
            raise LayoutMismatch(message) from exc
        if isinstance(exc, asyncpg.UndefinedFunctionError) and "jobqueue_layout_gate" in str(exc):
            raise LayoutMismatch(NOT_MIGRATED) from exc  # a schema from before migration 0015
        if isinstance(exc, asyncpg.UndefinedTableError) and "job_ready" in str(exc):
            raise LayoutMismatch(NOT_MIGRATED) from exc  # from before migration 0017
        raise
    return [
        ClaimedJob(
            row[0], row[1], _decode_json(row[2])[0], row[3], row[4], row[5], row[6], row[7], row[8]
        )
        for row in rows
    ]


def _by_token(ids: Sequence[int], attempts: Sequence[int], values: Sequence[str]) -> str:
    """A JSON object keyed by fencing token "<id>:<attempts>"; `values` are JSON texts."""
    return (
        "{"
        + ",".join(f'"{i}:{a}":{v}' for i, a, v in zip(ids, attempts, values, strict=True))
        + "}"
    )


def _tokens(ids: Sequence[int], attempts: Sequence[int]) -> str:
    return _by_token(ids, attempts, ["true"] * len(ids))


async def complete_jobs(
    conn: Conn,
    worker_id: UUID,
    ids: Sequence[int],
    attempts: Sequence[int],
    results_json: Sequence[str],
) -> int:
    """Mark jobs completed with their results; returns how many were still ours."""
    by_token = _by_token(ids, attempts, results_json)
    return int(await conn.fetchval(_sql("complete_jobs"), list(ids), worker_id, by_token))


async def fail_jobs(
    conn: Conn,
    worker_id: UUID,
    ids: Sequence[int],
    attempts: Sequence[int],
    errors: Sequence[str],
    retry_delays: Sequence[float | None],
) -> int:
    """Record failed attempts: a delay sends the job back to pending, None fails it for good."""
    values = [json.dumps([e, d]) for e, d in zip(errors, retry_delays, strict=True)]
    by_token = _by_token(ids, attempts, values)
    return int(await conn.fetchval(_sql("fail_jobs"), list(ids), worker_id, by_token))


async def release_jobs(
    conn: Conn, worker_id: UUID, ids: Sequence[int], attempts: Sequence[int]
) -> int:
    """Give back claimed jobs that never started, without using up a try."""
    tokens = _tokens(ids, attempts)
    return int(await conn.fetchval(_sql("release_jobs"), list(ids), worker_id, tokens))


async def release_unknown_jobs(conn: Conn, worker_id: UUID, known_ids: Sequence[int]) -> int:
    """Reconcile: give back jobs running under this worker that it does not hold (a lost claim
    reply); `known_ids` must be every job it holds."""
    return int(await conn.fetchval(_sql("release_unknown_jobs"), worker_id, list(known_ids)))


async def lost_jobs(
    conn: Conn, worker_id: UUID, ids: Sequence[int], attempts: Sequence[int]
) -> list[int]:
    """Ids among the worker's running jobs that are no longer running under its lease."""
    rows = await conn.fetch(_sql("still_running"), worker_id, list(ids), _tokens(ids, attempts))
    ours = {row[0] for row in rows}
    return [job_id for job_id in ids if job_id not in ours]
