"""jobqueue_enqueue() through whichever async driver the caller holds: asyncpg, psycopg 3, or
SQLAlchemy (AsyncSession or AsyncConnection, over either). The statement runs on the caller's
connection, so the job commits or rolls back with the caller's transaction.

psycopg and SQLAlchemy are optional (`pip install job-queue[psycopg]` / `[sqlalchemy]`); they
are imported only when such a connection is passed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from worker.db import sql_files
from worker.errors import InvalidJob
from worker.job_checks import PreparedJob

_sql = sql_files.statements("clients")
_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)\b")
_json = json.JSONEncoder(allow_nan=False).encode


@cache
def _asyncpg_form(name: str) -> tuple[str, tuple[str, ...]]:
    """The statement with $1.. in place of :names, and the names in that order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    return _PARAM.sub(number, _sql(name)), tuple(order)


@cache
def psycopg_form(name: str) -> str:
    """The statement with %(name)s placeholders: psycopg's, and Django's cursors'."""
    return _PARAM.sub(r"%(\1)s", _sql(name).replace("%", "%%"))


def driver_of(conn: object) -> str:
    """'asyncpg', 'psycopg' or 'sqlalchemy'; TypeError for anything else."""
    if isinstance(conn, asyncpg.Connection | asyncpg.Pool | PoolConnectionProxy):
        return "asyncpg"
    module = type(conn).__module__
    if module == "sqlalchemy" or module.startswith("sqlalchemy."):
        return "sqlalchemy"
    if module == "psycopg" or module.startswith("psycopg."):
        return "psycopg"
    raise TypeError(
        f"expected an asyncpg connection or pool, a psycopg AsyncConnection, or an SQLAlchemy "
        f"AsyncSession or AsyncConnection; got {type(conn).__module__}.{type(conn).__name__}"
    )


async def fetch_one_value(conn: Any, name: str, params: dict[str, Any]) -> Any:
    """Run one statement of clients.sql on the caller's connection; its first column."""
    driver = driver_of(conn)
    if driver == "asyncpg":
        statement, order = _asyncpg_form(name)
        return await conn.fetchval(statement, *(params[key] for key in order))
    if driver == "psycopg":
        cursor = await conn.execute(psycopg_form(name), params)
        row = await cursor.fetchone()
        return None if row is None else row[0]
    from sqlalchemy import text

    result = await conn.execute(text(_sql(name)), params)
    return result.scalar_one()


def _sqlstate_error(exc: BaseException) -> tuple[str, str | None, str] | None:
    """(sqlstate, column, message) of the server's error under whichever driver raised it:
    asyncpg's own, psycopg's, or either wrapped by SQLAlchemy (`orig`, then the cause; the
    wrapper may know the state but not the column, which the driver's own error has)."""
    seen: set[int] = set()
    found: tuple[str, str | None, str] | None = None
    here: BaseException | None = exc
    while here is not None and id(here) not in seen:
        seen.add(id(here))
        state = getattr(here, "sqlstate", None)
        if isinstance(state, str):
            diag = getattr(here, "diag", None)  # psycopg
            column = getattr(diag, "column_name", None) or getattr(here, "column_name", None)
            message = getattr(diag, "message_primary", None) or str(here)
            if column:
                return state, column, message
            found = found or (state, None, message)
        here = getattr(here, "orig", None) or here.__cause__
    return found


def invalid_job(exc: BaseException) -> InvalidJob | None:
    """The SQL function's refusal of a field (SQLSTATE 22023, or 23503 for a missing
    dependency, with the field in COLUMN) as the InvalidJob the Python rules raise."""
    found = _sqlstate_error(exc)
    if found is None:
        return None
    state, column, message = found
    if state not in ("22023", "23503") or not column:
        return None
    problem = message.strip().removeprefix("jobqueue_enqueue: ").removeprefix(column)
    return InvalidJob(column, problem.lstrip(": ") or message)


async def _run(conn: Any, name: str, params: dict[str, Any]) -> Any:
    try:
        return await fetch_one_value(conn, name, params)
    except Exception as exc:
        refused = invalid_job(exc)
        if refused is None:
            raise
        raise refused from exc


def sql_params(job: PreparedJob) -> dict[str, Any]:
    params = job.sql_fields()
    # an empty list is no dependency, as None is
    params["depends_on"] = list(params["depends_on"]) if params["depends_on"] else None
    return params


async def enqueue(conn: Any, job: PreparedJob) -> int:
    """jobqueue_enqueue() for one checked job, on the caller's connection; its id."""
    return int(await _run(conn, "jobs_enqueue", sql_params(job)))


async def enqueue_many(conn: Any, jobs: Sequence[PreparedJob]) -> list[int]:
    """jobqueue_enqueue() for each job, in order, in one statement; their ids."""
    if not jobs:
        return []
    items = []
    for n, job in enumerate(jobs):
        item = {**sql_params(job), "n": n, "payload": job.payload}
        if item["run_at"] is not None:
            item["run_at"] = item["run_at"].isoformat()
        items.append(item)
    ids = await _run(conn, "jobs_enqueue_many", {"jobs": _json(items)})
    return [int(job_id) for job_id in ids]
