"""Applying one migration without stopping writes (worker.db.migrate holds the advisory lock
and the version table; this module runs a file's statements).

- A file's statements run in one transaction, as before, under a short lock_timeout: a
  migration that waits behind a long transaction for a lock gives up and tries again later,
  instead of queueing every write to the table behind its own wait.
- An index on a large table is built CONCURRENTLY, outside the transaction: a statement the
  file marks with the line `-- jobqueue: concurrently` just above it is taken out of the
  transaction and run after it, alone, under the same lock_timeout. A build that fails leaves
  an invalid index behind, which is dropped (CONCURRENTLY too) before the next try.

A migration is recorded only when all of it is done; every statement is idempotent (IF NOT
EXISTS, CREATE OR REPLACE), so a migration stopped part-way is simply run again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

import asyncpg

from worker.db import sql_files

log = logging.getLogger(__name__)
_sql = sql_files.statements("migrate_steps")

MARKER = "-- jobqueue: concurrently"
_CONCURRENT = re.compile(
    rf"^{re.escape(MARKER)}[^\n]*\n"
    r"(?P<statement>CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+"
    r"(?P<name>\w+)\s+ON\s+(?P<table>\w+)[^;]*;)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class IndexBuild:
    name: str
    table: str
    statement: str


@dataclass(frozen=True)
class MigrationPlan:
    transactional: str
    concurrent: tuple[IndexBuild, ...]

    @property
    def has_transactional(self) -> bool:
        return any(
            line.strip() and not line.strip().startswith("--")
            for line in self.transactional.splitlines()
        )


@dataclass(frozen=True)
class LockPolicy:
    """How long one try waits for a lock, and how often a migration tries."""

    lock_timeout: float = 5.0
    retries: int = 20
    max_pause: float = 30.0

    def pause(self, attempt: int) -> float:
        return min(self.max_pause, 0.5 * 2**attempt)


def plan(sql: str) -> MigrationPlan:
    """The file's text split into what runs in its transaction and the marked index builds."""
    builds = tuple(
        IndexBuild(m.group("name"), m.group("table"), m.group("statement").rstrip(";"))
        for m in _CONCURRENT.finditer(sql)
    )
    return MigrationPlan(_CONCURRENT.sub("", sql), builds)


class MigrationBlocked(RuntimeError):
    """A lock stayed taken through every try; the message names who held things up."""


async def _describe_blockers(conn: asyncpg.Connection, table: str) -> str:
    rows = await conn.fetch(_sql("blockers"), table)
    if not rows:
        return "no session holds it now"
    return "; ".join(
        f"pid {r['pid']} ({r['application'] or 'no application_name'}, {r['state']}, "
        f"{r['age_seconds']} s)"
        for r in rows
    )


async def _retrying(
    conn: asyncpg.Connection, what: str, table: str, policy: LockPolicy, step: object
) -> None:
    for attempt in range(policy.retries + 1):
        try:
            await step()  # type: ignore[operator]
            return
        except asyncpg.LockNotAvailableError:
            blockers = await _describe_blockers(conn, table)
            if attempt == policy.retries:
                raise MigrationBlocked(
                    f"{what}: no lock within {policy.lock_timeout:g} s in {policy.retries + 1} "
                    f"tries (JOBQUEUE_MIGRATION_LOCK_TIMEOUT, JOBQUEUE_MIGRATION_RETRIES); "
                    f"waiting on: {blockers}"
                ) from None
            pause = policy.pause(attempt)
            log.warning("%s waited past the lock timeout (%s); again in %.1f s", what, blockers,
                        pause)  # fmt: skip
            await asyncio.sleep(pause)


async def _build(conn: asyncpg.Connection, build: IndexBuild) -> None:
    valid = await conn.fetchval(_sql("index_is_valid"), build.name)
    if valid is False:  # a build that failed before: its leftover goes first
        await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {build.name}")
    await conn.execute(build.statement)


async def apply(
    conn: asyncpg.Connection, sql: str, record: str, version: int, name: str, policy: LockPolicy
) -> None:
    """Run one migration's statements and record it (`record` is the version table's insert)."""
    steps = plan(sql)
    await conn.execute(_sql("no_statement_timeout"))
    await conn.execute(_sql("set_lock_timeout"), f"{int(policy.lock_timeout * 1000)}ms")
    try:
        await _apply(conn, steps, record, version, name, policy)
    finally:
        await conn.execute(_sql("reset_lock_timeout"))
        await conn.execute(_sql("reset_statement_timeout"))


async def _apply(
    conn: asyncpg.Connection,
    steps: MigrationPlan,
    record: str,
    version: int,
    name: str,
    policy: LockPolicy,
) -> None:

    async def transactional() -> None:
        async with conn.transaction():
            if steps.has_transactional:  # asyncpg cannot run a text of comments alone
                await conn.execute(steps.transactional)
            if not steps.concurrent:
                await conn.execute(record, version, name)

    await _retrying(conn, f"migration {version:04d}_{name}", "jobs", policy, transactional)
    for build in steps.concurrent:

        async def build_index(build: IndexBuild = build) -> None:
            await _build(conn, build)

        what = f"migration {version:04d}_{name}: index {build.name}"
        await _retrying(conn, what, build.table, policy, build_index)
    if steps.concurrent:
        await conn.execute(record, version, name)
