"""Plain `def` handlers: each call runs in a bounded thread pool, off the event loop, so a
blocking handler (requests, a database driver, CPU work) cannot stall claims, heartbeats or
acknowledgements.

The rules are the async handlers' own. The job's timeout runs from the call, and a cancel
(the API's, or the drain's) ends the job at once. Python cannot stop a thread, so the function
runs on until it returns; its result is dropped and `ctx.cancelled` turns true, which a long
loop should check. A call still waiting for a thread when it is cancelled never starts.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from worker.handlers.base import JobContext, SyncHandler


class SyncHandlerThreads:
    """One pool per worker process, sized to its job slots unless a setting says otherwise:
    with every slot running a `def` handler, none waits for a thread."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pool: ThreadPoolExecutor | None = None  # made on the first `def` handler's call

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="jobqueue-handler")
        return self._pool

    async def call(self, handler: SyncHandler, payload: dict[str, Any], ctx: JobContext) -> Any:
        """The handler's result. Context variables (tracing, log context) go with the call."""
        run = contextvars.copy_context().run
        future = asyncio.get_running_loop().run_in_executor(
            self._executor(), run, handler, payload, ctx
        )
        try:
            result = await future
        except asyncio.CancelledError:
            if ctx.stop_event is not None:
                ctx.stop_event.set()
            raise
        if inspect.isawaitable(result):  # e.g. a lambda that returns a coroutine
            result = await result
        return result

    def close(self) -> None:
        """Drop calls that never started; threads still running end with their functions."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
