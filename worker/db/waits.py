"""Waiting for jobs to finish, woken by NOTIFY through one LISTEN connection per process,
whatever the number of waiters: a waiter holds a pooled connection only for its two short
statements, never while it waits.

A lost LISTEN connection drops the notifications sent meanwhile, so after every (re)connect
each waiter reads its job again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from typing import Any

from worker.db import sql_files
from worker.db.jobs import Executor, Job, get_job
from worker.db.listen import Listener, ListeningService

FINISHED_CHANNEL = "jobqueue_job_finished"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
CONNECT_WAIT_SECONDS = 5.0

_sql = sql_files.statements("waits")


async def mark_waited(executor: Executor, job_id: int) -> None:
    await executor.execute(_sql("jobs_mark_waited"), job_id)


class JobWaiters(ListeningService):
    def __init__(self, dsn: str, connect_kwargs: dict[str, Any] | None = None) -> None:
        self._events: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._listener = Listener(
            dsn, {FINISHED_CHANNEL: self._notified}, self._wake_all, connect_kwargs
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(len(events) for events in self._events.values())

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        with contextlib.suppress(ValueError):
            for event in self._events.get(int(str(payload)), ()):
                event.set()

    def _wake_all(self) -> None:
        """After a (re)connect every waiter reads its job again: what finished meanwhile was
        announced to nobody."""
        for events in self._events.values():
            for event in events:
                event.set()

    async def _ensure_listening(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listener.run(), name="job-waiters")
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
