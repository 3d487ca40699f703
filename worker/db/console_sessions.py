"""The console's sessions (migration 0011): opened at login, ended by logout or expiry."""

from __future__ import annotations

from dataclasses import dataclass

from worker.db import sql_files
from worker.db.jobs import Executor

_sql = sql_files.statements("console_sessions")


@dataclass(frozen=True)
class StoredSession:
    scope: str
    token_mark: str


async def open_session(
    executor: Executor, key: str, scope: str, token_mark: str, seconds: float
) -> None:
    await executor.execute(_sql("insert_session"), key, scope, token_mark, seconds)


async def find_session(executor: Executor, key: str) -> StoredSession | None:
    row = await executor.fetchrow(_sql("select_session"), key)
    return None if row is None else StoredSession(row["scope"], row["token_mark"])


async def end_session(executor: Executor, key: str) -> None:
    await executor.execute(_sql("delete_session"), key)
