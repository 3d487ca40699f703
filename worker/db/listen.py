"""One LISTEN connection kept open: it reconnects with backoff, proves an idle connection alive
every PROBE_SECONDS, and calls `on_listening` after each (re)connect, since notifications sent
while nobody listened are gone. The worker's waker and the API's job waiters both use it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg

from worker.db import workers
from worker.db.connection import connect
from worker.db.errors import is_transient

log = logging.getLogger(__name__)

PROBE_SECONDS = 10.0  # how often an idle LISTEN connection proves it is still alive

Callback = Callable[[Any, int, str, Any], None]  # asyncpg's (connection, pid, channel, payload)


def backoff(failures: int) -> float:
    return float(min(5.0, 0.1 * 2 ** min(failures, 6)))


class Listener:
    def __init__(
        self,
        dsn: str,
        channels: Mapping[str, Callback],
        on_listening: Callable[[], None],
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._dsn = dsn
        self._channels = dict(channels)
        self._on_listening = on_listening
        self._connect_kwargs = connect_kwargs or {}
        self.connected = asyncio.Event()
        self.connections = 0  # how many times LISTEN was set up (1 + reconnects)

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
                await asyncio.sleep(backoff(failures))
                continue
            failures = 0
            try:
                await self._listen(conn)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("LISTEN connection lost (%s); reconnecting", exc)
            finally:
                self.connected.clear()
                conn.terminate()

    async def _listen(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        for channel, callback in self._channels.items():
            await conn.add_listener(channel, callback)
        self.connected.set()
        self.connections += 1
        self._on_listening()
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_SECONDS):
                    await lost.wait()
            if lost.is_set() or conn.is_closed():
                break
            async with asyncio.timeout(PROBE_SECONDS):
                await workers.probe(conn)
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
