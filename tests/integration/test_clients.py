"""The Python clients and jobqueue_enqueue() on real PostgreSQL, through each driver: a rollback
leaves no job, a commit wakes an idle worker through NOTIFY (its poll is an hour away), and a
refused field is named. Also runs the examples of docs/clients.md."""

from __future__ import annotations

import ast
import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fixtures.doc_examples import example
from tests.integration.queue_support import eventually, fetch, running_worker
from worker.client import Client, enqueue
from worker.db.clients import driver_of
from worker.errors import InvalidJob
from worker.handlers.base import HandlerRegistry, JobContext

DOC = "docs/clients.md"
USERS = "CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL)"

Connection = Callable[[], Any]


def _registry() -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.register("echo")
    async def echo(payload: dict[str, Any], ctx: JobContext) -> Any:
        return payload

    return registry


@asynccontextmanager
async def _asyncpg(dsn: str) -> AsyncIterator[tuple[Any, Callable[[], Any]]]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn, conn.transaction
    finally:
        await conn.close()


@asynccontextmanager
async def _psycopg(dsn: str) -> AsyncIterator[tuple[Any, Callable[[], Any]]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        yield conn, conn.transaction


def _sqlalchemy_url(dsn: str, driver: str) -> str:
    return dsn.replace("postgresql://", f"postgresql+{driver}://", 1)


@asynccontextmanager
async def _sa_session(dsn: str, driver: str) -> AsyncIterator[tuple[Any, Callable[[], Any]]]:
    from sqlalchemy.ext.asyncio import AsyncSession

    engine = create_async_engine(_sqlalchemy_url(dsn, driver))
    try:
        async with AsyncSession(engine) as session:
            yield session, session.begin
    finally:
        await engine.dispose()


@asynccontextmanager
async def _sa_connection(dsn: str) -> AsyncIterator[tuple[Any, Callable[[], Any]]]:
    engine = create_async_engine(_sqlalchemy_url(dsn, "asyncpg"))
    try:
        async with engine.connect() as conn:
            yield conn, conn.begin
    finally:
        await engine.dispose()


DRIVERS: dict[str, Callable[[str], Any]] = {
    "asyncpg": _asyncpg,
    "psycopg": _psycopg,
    "sqlalchemy-session-asyncpg": lambda dsn: _sa_session(dsn, "asyncpg"),
    "sqlalchemy-session-psycopg": lambda dsn: _sa_session(dsn, "psycopg"),
    "sqlalchemy-connection": _sa_connection,
}


class Rollback(Exception):
    pass


async def _jobs(dsn: str) -> list[asyncpg.Record]:
    return await fetch(dsn, "SELECT id, status::text AS status, payload FROM jobs")


@pytest.mark.parametrize("driver", DRIVERS)
async def test_rollback_leaves_no_job_and_commit_wakes_a_worker(pg_dsn: str, driver: str) -> None:
    async with running_worker(pg_dsn, _registry(), poll_interval=3600) as worker:
        await eventually(lambda: _true(worker.waker.connected.is_set()), what="LISTEN")
        async with DRIVERS[driver](pg_dsn) as (conn, transaction):
            with pytest.raises(Rollback):
                async with transaction():
                    await enqueue(conn, "echo", {"kept": False})
                    raise Rollback
            assert await _jobs(pg_dsn) == []
            async with transaction():
                job_id = await enqueue(conn, "echo", {"kept": True}, max_tries=2)
        # the worker's next poll is an hour away: only the commit's NOTIFY can wake it

        async def completed() -> bool:
            return [(r["id"], r["status"]) for r in await _jobs(pg_dsn)] == [(job_id, "completed")]

        await eventually(completed, what="the committed job to run")


async def _true(value: bool) -> bool:
    return value


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_refused_field_is_named(pg_dsn: str, driver: str) -> None:
    async with DRIVERS[driver](pg_dsn) as (conn, transaction):
        with pytest.raises(InvalidJob, match="max_tries: Input should be greater than or eq"):
            async with transaction():
                await enqueue(conn, "echo", max_tries=0)
        with pytest.raises(InvalidJob, match="depends_on: no job has id 4242"):
            async with transaction():
                await enqueue(conn, "echo", depends_on=[4242])
    assert await _jobs(pg_dsn) == []


async def test_other_objects_are_refused_by_type() -> None:
    with pytest.raises(TypeError, match="asyncpg connection or pool"):
        driver_of(object())


async def test_the_sql_function_applies_the_api_rules(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        cases = {
            "SELECT jobqueue_enqueue('')": "job_type",
            "SELECT jobqueue_enqueue('x', '[1]')": "payload",
            "SELECT jobqueue_enqueue('x', queue_name => '')": "queue_name",
            "SELECT jobqueue_enqueue('x', timeout_seconds => 0)": "timeout_seconds",
            "SELECT jobqueue_enqueue('x', delay_seconds => -1)": "delay_seconds",
            "SELECT jobqueue_enqueue('x', run_at => now(), delay_seconds => 1)": "run_at",
            "SELECT jobqueue_enqueue('x', jsonb_build_object('a', repeat('x', 300000)))": "payload",
        }
        for sql, field in cases.items():
            with pytest.raises(asyncpg.InvalidParameterValueError) as caught:
                await conn.fetchval(sql)
            assert caught.value.column_name == field, sql
        first = await conn.fetchval("SELECT jobqueue_enqueue('x', idempotency_key => 'k')")
        again = await conn.fetchval("SELECT jobqueue_enqueue('x', idempotency_key => 'k')")
        assert first == again
    finally:
        await conn.close()


async def test_client_wait_returns_when_the_job_finishes(pg_dsn: str) -> None:
    async with Client(pg_dsn) as client:
        job_id = await client.enqueue("echo", {"n": 1})
        still = await client.wait(job_id, timeout=0.2)
        assert still.status == "pending"
        async with running_worker(pg_dsn, _registry()):
            done = await client.wait(job_id, timeout=60)
        assert done.status == "completed" and done.result == {"n": 1}


# ------------------------------------------------------------------ docs/clients.md
async def _run_python(code: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    namespace: dict[str, Any] = {}
    compiled = compile(code, DOC, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)
    if isinstance(result, Awaitable):
        await result
    return namespace


@pytest.fixture
async def users(pg_dsn: str) -> AsyncIterator[str]:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(USERS)
    finally:
        await conn.close()
    yield pg_dsn


async def test_doc_fastapi_sqlalchemy(users: str, monkeypatch: pytest.MonkeyPatch) -> None:
    code = example(DOC, "fastapi-sqlalchemy").code
    namespace = await _run_python(
        code, {"DATABASE_URL": _sqlalchemy_url(users, "asyncpg")}, monkeypatch
    )
    transport = httpx.ASGITransport(app=namespace["app"], raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            first = await client.post("/signup", json={"email": "ada@example.com"})
            assert first.status_code == 200, first.text
            taken = await client.post("/signup", json={"email": "ada@example.com"})
            assert taken.status_code == 500  # the unique email refused: rolled back
    finally:
        await namespace["engine"].dispose()
    (job,) = await _jobs(users)
    assert job["id"] == first.json()["job_id"]


@pytest.mark.parametrize("name", ["psycopg", "asyncpg"])
async def test_doc_driver_examples(
    users: str, name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await _run_python(example(DOC, name).code, {"DB_URL": users}, monkeypatch)
    (job,) = await _jobs(users)
    assert f"enqueued {job['id']}" in capsys.readouterr().out


async def test_doc_plain_sql(users: str) -> None:
    conn = await asyncpg.connect(users)
    try:
        await conn.execute(example(DOC, "plain-sql").code)
        rows = await conn.fetch("SELECT payload ->> 'to' AS to FROM jobs ORDER BY id")
        assert [r["to"] for r in rows] == ["linus@example.com", "margaret@example.com"]
    finally:
        await conn.close()


async def test_doc_wait(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from worker.handlers import registry as builtin

    async with running_worker(pg_dsn, builtin):
        await asyncio.wait_for(
            _run_python(example(DOC, "wait").code, {"DB_URL": pg_dsn}, monkeypatch), 120
        )
    assert "completed {}" in capsys.readouterr().out


def test_doc_examples_are_all_tested() -> None:
    from tests.fixtures.doc_examples import examples

    assert {e.name for e in examples(DOC)} == {
        "fastapi-sqlalchemy",
        "psycopg",
        "asyncpg",
        "plain-sql",
        "wait",
    }
    assert os.path.exists(DOC)
