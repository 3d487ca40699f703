"""The PostgreSQL fixture works: a round trip, a migrated schema, and isolated databases."""

from __future__ import annotations

import asyncpg

from worker.db.migrate import expected_version


async def test_round_trip(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("CREATE TABLE smoke (id int PRIMARY KEY, note text)")
        await conn.execute("INSERT INTO smoke VALUES (1, 'hello')")
        assert await conn.fetchval("SELECT note FROM smoke WHERE id = 1") == "hello"
        version = await conn.fetchval("SELECT max(version) FROM jobqueue_schema_version")
        assert version == expected_version()
    finally:
        await conn.close()


async def test_each_test_gets_a_fresh_database(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        # The table made by the test above must not be here.
        assert await conn.fetchval("SELECT to_regclass('smoke')") is None
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 0
    finally:
        await conn.close()


async def test_private_server_restarts_on_the_same_port(private_pg_server) -> None:
    dsn = await private_pg_server.create_database("smoke")
    port = private_pg_server.port
    private_pg_server.restart()
    assert private_pg_server.port == port
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
