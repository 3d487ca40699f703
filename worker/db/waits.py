"""Waiting for jobs to finish, woken by NOTIFY through one LISTEN connection per process,
whatever the number of waiters: a waiter holds a pooled connection only for its two short
statements, never while it waits.

A lost LISTEN connection drops the notifications sent meanwhile, so after every (re)connect
each waiter reads its job again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from typing import Any

import asyncpg

from worker.db import sql_files, workers
from worker.db.connection import connect
from worker.db.errors import is_transient
from worker.db.jobs import Executor, Job, get_job

log = logging.getLogger(__name__)

FINISHED_CHANNEL = "jobqueue_job_finished"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
PROBE_SECONDS = 10.0
CONNECT_WAIT_SECONDS = 5.0

_sql = sql_files.statements("waits")


async def mark_waited(executor: Executor, job_id: int) -> None:
    await executor.execute(_sql("jobs_mark_waited"), job_id)


class JobWaiters:
    def __init__(self, dsn: str, connect_kwargs: dict[str, Any] | None = None) -> None:
        self._dsn = dsn
        self._connect_kwargs = connect_kwargs or {}
        self._events: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.connections = 0  # LISTEN set-ups so far (1 + reconnects)

    @property
    def waiting(self) -> int:
        return sum(len(events) for events in self._events.values())

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        with contextlib.suppress(ValueError):
            for event in self._events.get(int(str(payload)), ()):
                event.set()

    def _wake_all(self) -> None:
        for events in self._events.values():
            for event in events:
                event.set()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                conn = await connect(self._dsn, **self._connect_kwargs)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            try:
                await self._listen(conn)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("wait LISTEN connection lost (%s); reconnecting", exc)
            finally:
                self.connected.clear()
                conn.terminate()

    async def _listen(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(FINISHED_CHANNEL, self._notified)
        self.connections += 1
        self.connected.set()
        self._wake_all()  # whatever finished while nobody listened
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_SECONDS):
                    await lost.wait()
            if lost.is_set() or conn.is_closed():
                return
            async with asyncio.timeout(PROBE_SECONDS):
                await workers.probe(conn)

    async def _ensure_listening(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="job-waiters")
        with contextlib.suppress(TimeoutError):
            # without LISTEN, a waiter still answers: by reading the job at its deadline
            await asyncio.wait_for(self.connected.wait(), CONNECT_WAIT_SECONDS)

    async def wait(self, pool: Executor, job_id: int, seconds: float) -> Job | None:
        """The job once it is terminal, or as it is after `seconds`; None if it does not exist."""
        deadline = time.monotonic() + seconds
        await self._ensure_listening()
        event = asyncio.Event()
        self._events[job_id].add(event)
        try:
            await mark_waited(pool, job_id)
            while True:
                event.clear()  # before the read: a notification after it is not lost
                job = await get_job(pool, job_id)
                remaining = deadline - time.monotonic()
                if job is None or job.status in TERMINAL or remaining <= 0:
                    return job
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            events = self._events[job_id]
            events.discard(event)
            if not events:
                del self._events[job_id]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
