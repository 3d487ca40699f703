"""One LISTEN connection kept open: it reconnects with backoff, proves an idle connection alive
every PROBE_SECONDS, and calls `on_listening` after each (re)connect, since notifications sent
while nobody listened are gone. The worker's waker and the API's job waiters both use it; the
waker also holds its liveness lock on it (`session`: what a new session does first, and what
follows its end)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import asyncpg

from worker.db import workers
from worker.db.connection import connect
from worker.db.errors import is_transient

log = logging.getLogger(__name__)

PROBE_SECONDS = 10.0  # how often an idle LISTEN connection proves it is still alive

Callback = Callable[[Any, int, str, Any], None]  # asyncpg's (connection, pid, channel, payload)


def backoff(failures: int, cap: float = 5.0) -> float:
    return float(min(cap, 0.1 * 2 ** min(failures, 6)))


class SessionHooks(Protocol):
    """What a user of the connection does with each session: `opened` runs before LISTEN is
    set up, `tick` every `tick_seconds` (jittered) in place of the probe, which it must prove
    the connection alive as well as (an error in either ends the session, and a transient one
    reconnects), and `closed` once the session is gone."""

    tick_seconds: float

    async def opened(self, conn: asyncpg.Connection) -> None: ...

    async def tick(self, conn: asyncpg.Connection) -> None: ...

    def closed(self) -> None: ...


class Listener:
    def __init__(
        self,
        dsn: str,
        channels: Mapping[str, Callback],
        on_listening: Callable[[], None],
        connect_kwargs: dict[str, Any] | None = None,
        *,
        session: SessionHooks | None = None,
        max_backoff: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._channels = dict(channels)
        self._on_listening = on_listening
        self._connect_kwargs = connect_kwargs or {}
        self._session = session
        self._max_backoff = max_backoff
        self._conn: asyncpg.Connection | None = None
        self.connected = asyncio.Event()
        self.connections = 0  # how many times LISTEN was set up (1 + reconnects)

    def reconnect(self) -> None:
        """Drop the connection and open a new one: it looks alive to us, but the server says
        otherwise (the liveness lock it should hold is free)."""
        if self._conn is not None:
            self._conn.terminate()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                conn = await connect(self._dsn, **self._connect_kwargs)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                if failures == 1:
                    log.warning("LISTEN connection unavailable (%s); reconnecting", exc)
                await asyncio.sleep(backoff(failures, self._max_backoff))
                continue
            failures = 0
            self._conn = conn
            confused = False
            try:
                await self._listen(conn)
            except Exception as exc:
                if is_transient(exc):
                    log.warning("LISTEN connection lost (%s); reconnecting", exc)
                else:
                    # Never a reason to stop listening: the waker's connection also holds the
                    # worker's liveness lock, without which it claims nothing. Seen in chaos
                    # runs: asyncpg's "cannot switch to state 11; another operation (2) is in
                    # progress" on a connection the proxy had cut mid-reply.
                    log.exception("LISTEN connection failed; reconnecting")
                    confused = True
            finally:
                self.connected.clear()
                self._conn = None
                conn.terminate()
                if self._session is not None:
                    self._session.closed()
            if confused:  # not a tight loop, should the same error come back every session
                await asyncio.sleep(backoff(1, self._max_backoff))

    async def _listen(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        if self._session is not None:
            await self._session.opened(conn)
        for channel, callback in self._channels.items():
            await conn.add_listener(channel, callback)
        self.connected.set()
        self.connections += 1
        self._on_listening()
        session = self._session
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                if session is None:
                    wait = PROBE_SECONDS
                else:  # jittered, so that many workers' ticks spread out
                    wait = session.tick_seconds * (0.5 + random.random())
                async with asyncio.timeout(wait):
                    await lost.wait()
            if lost.is_set() or conn.is_closed():
                break
            async with asyncio.timeout(PROBE_SECONDS):
                if session is None:
                    await workers.probe(conn)
                else:
                    await session.tick(conn)
        log.warning("LISTEN connection closed; reconnecting")


class ListeningService:
    """What a user of one Listener shows: whether it listens, and how many times it set up."""

    _listener: Listener

    @property
    def connected(self) -> asyncio.Event:
        return self._listener.connected

    @property
    def connections(self) -> int:
        """How many times LISTEN was set up (1 + reconnects)."""
        return self._listener.connections
