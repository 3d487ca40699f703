"""jobqueue_enqueue() through whichever async driver the caller holds: asyncpg, psycopg 3, or
SQLAlchemy (AsyncSession or AsyncConnection, over either). The statement runs on the caller's
connection, so the job commits or rolls back with the caller's transaction.

psycopg and SQLAlchemy are optional (`pip install job-queue[psycopg]` / `[sqlalchemy]`); they
are imported only when such a connection is passed.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from worker.db import sql_files

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
def _psycopg_form(name: str) -> str:
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
        cursor = await conn.execute(_psycopg_form(name), params)
        row = await cursor.fetchone()
        return None if row is None else row[0]
    from sqlalchemy import text

    result = await conn.execute(text(_sql(name)), params)
    return result.scalar_one()


async def enqueue(conn: Any, fields: dict[str, Any]) -> int:
    """jobqueue_enqueue() with these fields, every one of its parameters by name (the defaults
    are worker.client.enqueue's); payload is a dict or None."""
    params = {**fields, "payload": _json(fields["payload"] or {})}
    if params["depends_on"]:
        params["depends_on"] = [int(job_id) for job_id in params["depends_on"]]
    else:  # an empty list is no dependency, as None is
        params["depends_on"] = None
    return int(await fetch_one_value(conn, "jobs_enqueue", params))
