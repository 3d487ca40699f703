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
_PARAM = re.compile(r"\$(\d+)\b")
_json = json.JSONEncoder(allow_nan=False).encode


def _named(name: str, form: str, *, escape: str = "") -> str:
    """The statement with each $n written as `form` of the name its `-- params:` line gives it,
    and `escape` (a driver's own placeholder character) doubled everywhere. A $n in a comment
    stays: some drivers would take a placeholder there for a parameter."""
    statement = _sql(name)
    names = sql_files.declared_parameters(statement)
    lines = []
    for line in statement.split("\n"):
        if escape:
            line = line.replace(escape, escape * 2)
        code, dashes, comment = line.partition("--")
        code = _PARAM.sub(lambda m: form.format(names[int(m.group(1)) - 1]), code)
        lines.append(code + dashes + comment)
    return "\n".join(lines)


@cache
def _asyncpg_form(name: str) -> tuple[str, tuple[str, ...]]:
    """The statement as written ($1..), and the names of its parameters in that order."""
    statement = _sql(name)
    return statement, tuple(sql_files.declared_parameters(statement))


@cache
def psycopg_form(name: str) -> str:
    """The statement with %(name)s placeholders: psycopg's, and Django's cursors'."""
    return _named(name, "%({})s", escape="%")


@cache
def sqlalchemy_form(name: str) -> str:
    """The statement with :name placeholders, as SQLAlchemy's text() takes them."""
    return _named(name, ":{}")


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

    result = await conn.execute(text(sqlalchemy_form(name)), params)
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
