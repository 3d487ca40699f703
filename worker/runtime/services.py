"""One start/stop protocol for the runtime's background services (heartbeat, rescuer,
cleaner, waker): each is started once, runs until stopped, and stops without raising. A service
that crashes is logged, never silently gone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from worker.runtime.resilience import run_periodically

log = logging.getLogger(__name__)


class Service(Protocol):
    def start(self) -> None: ...

    async def stop(self) -> None: ...


class TaskService:
    """A service that is one coroutine run as a task: started, then cancelled to stop."""

    def __init__(self, name: str, run: Callable[[], Awaitable[Any]]) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)  # type: ignore[arg-type]
        self._task.add_done_callback(_log_crash)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class PeriodicService(TaskService):
    """A maintenance service: `action` every `interval` seconds, jittered."""

    def __init__(self, name: str, interval: float, action: Callable[[], Awaitable[object]]):
        super().__init__(name, lambda: run_periodically(interval, action, what=name))


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", task.get_name(), exc_info=task.exception())
