"""Every named statement of worker/db/sql/*.sql is valid PostgreSQL exactly as the file writes
it: PostgreSQL parses and plans each one against the migrated schema (asyncpg's prepare), and
the parameters it finds are the ones the statement's `-- params:` line names, in number.

A statement that does not parse, names a column or function the migrations never created, or
takes a parameter its `-- params:` line forgot (or names one it does not take) fails here,
before any code path that runs it is exercised."""

from __future__ import annotations

from importlib import resources

import asyncpg

from worker.db import sql_files

SQL_DIR = resources.files("worker.db").joinpath("sql")
STEMS = sorted(p.name.removesuffix(".sql") for p in SQL_DIR.iterdir() if p.name.endswith(".sql"))

# Statements that cannot be prepared on their own (say, one reading a temporary table that an
# earlier statement of the session creates), each with the reason: every entry is one this test
# cannot vouch for. None today: DDL, DO blocks and CREATE DATABASE prepare too (PostgreSQL
# parses them, and runs nothing), and what were two RESETs in one statement are now two.
UNPREPARABLE: dict[tuple[str, str], str] = {}


async def test_every_statement_prepares_with_the_parameters_it_names(
    conn: asyncpg.Connection,
) -> None:
    failures: list[str] = []
    seen: set[tuple[str, str]] = set()
    for stem in STEMS:
        written = SQL_DIR.joinpath(f"{stem}.sql").read_text()
        for name, statement in sql_files.load(stem).items():
            where = f"{stem}.sql {name}"
            seen.add((stem, name))
            if statement not in written:
                failures.append(f"{where}: the loader changed its text (not as written)")
                continue
            declared = sql_files.declared_parameters(statement)
            if (stem, name) in UNPREPARABLE:
                continue
            try:
                prepared = await conn.prepare(statement)
            except asyncpg.PostgresError as exc:
                failures.append(f"{where}: {type(exc).__name__}: {exc}")
                continue
            found = len(prepared.get_parameters())
            if found != len(declared):
                failures.append(
                    f"{where}: PostgreSQL finds {found} parameters, `-- params:` names "
                    f"{len(declared)} ({', '.join(declared) or 'none'})"
                )
    # an entry whose statement is gone would excuse whatever later takes its name
    failures += [
        f"{s}.sql {n}: listed in UNPREPARABLE, but no such statement"
        for s, n in sorted(set(UNPREPARABLE) - seen)
    ]
    assert not failures, "\n".join(failures)
