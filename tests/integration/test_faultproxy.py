"""The fault proxy itself, against real PostgreSQL: each fault does what it says."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.fixtures.faultproxy import FaultProxy


def _via(proxy: FaultProxy, dsn: str) -> str:
    url = urlsplit(dsn)
    return proxy.dsn_for(dsn) if url.port else dsn


async def test_forwards_statements(proxy: FaultProxy, pg_dsn: str) -> None:
    conn = await asyncpg.connect(_via(proxy, pg_dsn))
    try:
        assert await conn.fetchval("SELECT 41 + 1") == 42
        assert proxy.connections == 1
    finally:
        await conn.close()


async def test_cut_all_breaks_a_statement_in_flight(proxy: FaultProxy, pg_dsn: str) -> None:
    conns = [await asyncpg.connect(_via(proxy, pg_dsn)) for _ in range(3)]
    sleeping = asyncio.create_task(conns[0].fetchval("SELECT pg_sleep(30)"))
    await asyncio.sleep(0.2)
    assert proxy.cut_all() == 3
    with pytest.raises((asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError)):
        await sleeping
    for conn in conns[1:]:
        with pytest.raises((asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError)):
            await conn.fetchval("SELECT 1")
    for conn in conns:
        conn.terminate()


async def test_cut_random_breaks_one_connection(proxy: FaultProxy, pg_dsn: str) -> None:
    conns = [await asyncpg.connect(_via(proxy, pg_dsn)) for _ in range(3)]
    assert proxy.cut_random()
    await asyncio.sleep(0.1)
    alive = 0
    for conn in conns:
        try:
            await conn.fetchval("SELECT 1")
            alive += 1
        except (asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError):
            pass
        conn.terminate()
    assert alive == 2


async def test_dropped_reply_after_the_server_executed(proxy: FaultProxy, pg_dsn: str) -> None:
    direct = await asyncpg.connect(pg_dsn)
    conn = await asyncpg.connect(_via(proxy, pg_dsn))
    try:
        await direct.execute("CREATE TABLE proxy_probe (n int)")
        proxy.drop_replies(1)
        with pytest.raises((asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError)):
            await conn.execute("INSERT INTO proxy_probe VALUES (1)")
        assert proxy.dropped_replies == 1
        # the client never heard of it, yet the row is there
        assert await direct.fetchval("SELECT count(*) FROM proxy_probe") == 1
    finally:
        conn.terminate()
        await direct.close()


async def test_cut_next_statement_cuts_while_the_server_runs_it(
    proxy: FaultProxy, pg_dsn: str
) -> None:
    conn = await asyncpg.connect(_via(proxy, pg_dsn))
    proxy.cut_next_statement()
    with pytest.raises((asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError)):
        await conn.fetchval("SELECT pg_sleep(0.5)")
    conn.terminate()
    assert proxy.cuts == 1


async def test_delay_holds_replies_back(proxy: FaultProxy, pg_dsn: str) -> None:
    conn = await asyncpg.connect(_via(proxy, pg_dsn))
    try:
        proxy.delay(0.3)
        started = time.monotonic()
        assert await conn.fetchval("SELECT 1") == 1
        # a lower bound only: contention can make it slower, never faster
        assert time.monotonic() - started >= 0.3
        proxy.delay(0)
    finally:
        await conn.close()


async def test_refuse_turns_new_connections_away_for_a_while(
    proxy: FaultProxy, pg_dsn: str
) -> None:
    proxy.refuse(0.5)
    with pytest.raises((asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError)):
        await asyncpg.connect(_via(proxy, pg_dsn), timeout=5)
    assert proxy.refused == 1
    await asyncio.sleep(0.6)
    conn = await asyncpg.connect(_via(proxy, pg_dsn))
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()


async def _client_port(admin: asyncpg.Connection, conn: asyncpg.Connection) -> int:
    """The port the server sees `conn` come from: the proxy's side of its link."""
    pid = conn.get_server_pid()
    return int(await admin.fetchval("SELECT client_port FROM pg_stat_activity WHERE pid = $1", pid))


async def test_cut_port_cuts_that_connection_only(proxy: FaultProxy, pg_dsn: str) -> None:
    admin = await asyncpg.connect(pg_dsn)
    conns = [await asyncpg.connect(_via(proxy, pg_dsn)) for _ in range(2)]
    try:
        assert proxy.cut_port(await _client_port(admin, conns[0]))
        with pytest.raises((asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError)):
            await conns[0].fetchval("SELECT 1")
        assert await conns[1].fetchval("SELECT 1") == 1
        assert not proxy.cut_port(1)  # no such link
    finally:
        for conn in conns:
            conn.terminate()
        await admin.close()


async def test_sever_port_ends_the_session_while_its_client_hangs(
    proxy: FaultProxy, pg_dsn: str
) -> None:
    admin = await asyncpg.connect(pg_dsn)
    conn = await asyncpg.connect(_via(proxy, pg_dsn))
    try:
        pid = conn.get_server_pid()
        assert proxy.sever_port(await _client_port(admin, conn))

        async def session_gone() -> bool:
            return not await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
            )

        deadline = time.monotonic() + 10
        while not await session_gone():
            assert time.monotonic() < deadline, "the server kept the severed session"
            await asyncio.sleep(0.05)
        # the client is never told: its statement waits for a reply that never comes
        with pytest.raises(TimeoutError):
            await conn.fetchval("SELECT 1", timeout=0.5)
        assert not conn.is_closed()
    finally:
        conn.terminate()
        await admin.close()
