"""Group commit for single-job POSTs: jobs that arrive while every flusher is busy wait for
the next free one, which inserts them together in one statement (one round trip, one commit).

Under light load each job is flushed at once, alone, so nothing waits. Under heavy load the
batches grow by themselves, which is what lets one API process take thousands of POSTs per
second. A request is answered only after its own job is committed, as without grouping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from worker.db.jobs import Job, NewJob

EnqueueMany = Callable[[Sequence[NewJob]], Awaitable[list[tuple[Job, bool]]]]
Pending = tuple[NewJob, "asyncio.Future[tuple[Job, bool]]"]


class EnqueueCoalescer:
    def __init__(
        self,
        enqueue_many: EnqueueMany,
        *,
        flushers: int,
        max_batch: int,
        is_outage: Callable[[BaseException], bool],
    ) -> None:
        self._enqueue_many = enqueue_many
        self._max_flushers = flushers
        self._max_batch = max_batch
        self._is_outage = is_outage
        self._queue: list[Pending] = []
        self._flushers: set[asyncio.Task[None]] = set()

    async def enqueue(self, job: NewJob) -> tuple[Job, bool]:
        future: asyncio.Future[tuple[Job, bool]] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        if len(self._flushers) < self._max_flushers:
            task = asyncio.create_task(self._drain())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            await self._flush(batch)

    async def _flush(self, batch: list[Pending]) -> None:
        try:
            pairs = await self._enqueue_many([job for job, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or self._is_outage(exc):
                for _, future in batch:
                    _settle(future, exc=exc)
                return
            # One job's value broke the statement: retry alone, so only its request fails.
            for item in batch:
                await self._flush([item])
            return
        for (_, future), pair in zip(batch, pairs, strict=True):
            _settle(future, result=pair)


def _settle(
    future: asyncio.Future[tuple[Job, bool]],
    *,
    result: tuple[Job, bool] | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():  # the request was cancelled (client gone); its job is still enqueued
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)
