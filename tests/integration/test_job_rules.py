"""One home for the rules of a new job: the Python rules (worker.job_checks, which the API, the
CLI, the client and typed tasks apply) and the SQL function jobqueue_enqueue() (for callers
that reach the table only through SQL) accept and refuse the same jobs, and name the same
field. Each case goes to both, on real PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from worker.db.clients import invalid_job
from worker.errors import InvalidJob
from worker.job_checks import prepare_job

BIG = "x" * (300 * 1024)
# (job_type, payload, options) -> the field both refuse, or None when both accept
CASES: list[tuple[str, Any, dict[str, Any], str | None]] = [
    ("ok", {}, {}, None),
    ("t" * 200, {"a": 1}, {"queue_name": "q" * 128, "max_tries": 1000}, None),
    ("ok", {}, {"queue_name": "Tenant-7_eu.west:hi"}, None),
    ("ok", {}, {"max_tries": 1, "timeout_seconds": 7 * 24 * 3600.0}, None),
    ("ok", {}, {"delay_seconds": 10 * 365 * 24 * 3600.0, "idempotency_key": "k" * 255}, None),
    ("ok", {}, {"unique_key": "u" * 255, "concurrency_key": "c" * 255}, None),
    ("", {}, {}, "job_type"),
    ("t" * 201, {}, {}, "job_type"),
    ("ok", [1, 2], {}, "payload"),
    ("ok", {"big": BIG}, {}, "payload"),
    ("ok", {}, {"queue_name": ""}, "queue_name"),
    ("ok", {}, {"queue_name": "q" * 129}, "queue_name"),
    ("ok", {}, {"queue_name": "my queue/../x"}, "queue_name"),
    ("ok", {}, {"queue_name": "-leading"}, "queue_name"),
    ("ok", {}, {"queue_name": "é"}, "queue_name"),
    ("ok", {}, {"max_tries": 0}, "max_tries"),
    ("ok", {}, {"max_tries": 1001}, "max_tries"),
    ("ok", {}, {"idempotency_key": ""}, "idempotency_key"),
    ("ok", {}, {"idempotency_key": "k" * 256}, "idempotency_key"),
    ("ok", {}, {"concurrency_key": "c" * 256}, "concurrency_key"),
    ("ok", {}, {"unique_key": ""}, "unique_key"),
    ("ok", {}, {"unique_key": "u" * 256}, "unique_key"),
    ("ok", {}, {"timeout_seconds": 0}, "timeout_seconds"),
    ("ok", {}, {"timeout_seconds": 7 * 24 * 3600.0 + 1}, "timeout_seconds"),
    ("ok", {}, {"delay_seconds": -1}, "delay_seconds"),
    ("ok", {}, {"delay_seconds": 10 * 365 * 24 * 3600.0 + 1}, "delay_seconds"),
    ("ok", {}, {"run_at": "2030-01-01T00:00:00+00:00", "delay_seconds": 5}, "run_at"),
]

SQL = """SELECT jobqueue_enqueue(job_type => $1, payload => $2::text::jsonb, queue_name => $3,
    priority => $4, run_at => $5::timestamptz, max_tries => $6, idempotency_key => $7,
    timeout_seconds => $8, delay_seconds => $9, concurrency_key => $10, unique_key => $11)"""


def _python(job_type: str, payload: Any, options: dict[str, Any]) -> str | None:
    try:
        prepare_job(job_type, payload, options)
    except InvalidJob as exc:
        return exc.field
    return None


async def _sql(
    conn: asyncpg.Connection, job_type: str, payload: Any, options: dict[str, Any]
) -> str | None:
    values = [
        options.get("queue_name", "default"),
        options.get("priority", 0),
        options.get("run_at"),
        options.get("max_tries", 3),
        options.get("idempotency_key"),
        options.get("timeout_seconds"),
        options.get("delay_seconds"),
        options.get("concurrency_key"),
        options.get("unique_key"),
    ]
    try:
        async with conn.transaction():
            await conn.fetchval(SQL, job_type, json.dumps(payload), *values)
            raise _Undo
    except _Undo:
        return None
    except asyncpg.PostgresError as exc:
        refused = invalid_job(exc)
        assert refused is not None, f"SQL refused without naming a field: {exc!r}"
        return refused.field


class _Undo(Exception):
    pass


@pytest.mark.parametrize(("job_type", "payload", "options", "field"), CASES)
async def test_python_and_sql_refuse_the_same_jobs_naming_the_same_field(
    pool: asyncpg.Pool,
    job_type: str,
    payload: Any,
    options: dict[str, Any],
    field: str | None,
) -> None:
    if isinstance(options.get("run_at"), str):
        from datetime import datetime

        options = {**options, "run_at": datetime.fromisoformat(options["run_at"])}
    assert _python(job_type, payload, options) == field
    async with pool.acquire() as conn:
        assert await _sql(conn, job_type, payload, options) == field
