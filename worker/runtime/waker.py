"""The LISTEN connection: wakes the claim loop when jobs are enqueued on our queues, and passes
on cancellations. It reconnects with backoff; after a reconnect it wakes the loop anyway, since
notifications sent meanwhile are gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from worker.db import NEW_JOB_CHANNEL, workers
from worker.db.connection import connect
from worker.runtime.resilience import backoff_delay, is_transient

log = logging.getLogger(__name__)

CANCEL_CHANNEL = "jobqueue_cancel"
PROBE_SECONDS = 10.0  # how often an idle LISTEN connection proves it is still alive


class Waker:
    def __init__(
        self,
        dsn: str,
        queues: list[str],
        on_new_job: Callable[[], None],
        on_cancel: Callable[[int], None],
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._dsn = dsn
        self._queues = set(queues)
        self._on_new_job = on_new_job
        self._on_cancel = on_cancel
        self._connect_kwargs = connect_kwargs or {}
        self.connected = asyncio.Event()
        self.connections = 0  # how many times LISTEN was set up (1 + reconnects)

    def _new_job(self, _conn: object, _pid: int, _channel: str, queue: object) -> None:
        if queue in self._queues:
            self._on_new_job()

    def _cancel(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        with contextlib.suppress(ValueError):
            self._on_cancel(int(str(payload)))

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
                await asyncio.sleep(backoff_delay(failures, 0.1, 5.0))
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
        await conn.add_listener(NEW_JOB_CHANNEL, self._new_job)
        await conn.add_listener(CANCEL_CHANNEL, self._cancel)
        self.connected.set()
        self.connections += 1
        self._on_new_job()  # whatever was enqueued while we were not listening
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_SECONDS):
                    await lost.wait()
            if lost.is_set() or conn.is_closed():
                break
            async with asyncio.timeout(PROBE_SECONDS):
                await workers.probe(conn)
        log.warning("LISTEN connection closed; reconnecting")
