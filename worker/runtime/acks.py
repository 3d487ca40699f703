"""Batched, fenced acknowledgements. Handlers drop their outcome here; one flusher writes
everything that piled up while the previous write was in flight (group commit), so a busy
worker sends a few large statements and an idle one answers at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from worker import tracing
from worker.db import attempts as attempt_stories
from worker.db import claims, deferrals, snoozes
from worker.db.attempts import AttemptStory
from worker.db.claims import Conn
from worker.db.errors import is_refusal
from worker.runtime.metrics import WorkerMetrics
from worker.runtime.resilience import is_transient, retry_transient
from worker.runtime.tracker import Tracker

log = logging.getLogger(__name__)

Completion = tuple[int, int, str]  # id, attempts, result as JSON text
Failure = tuple[int, int, str, float | None]  # id, attempts, error, retry delay (None: final)
Snoozed = tuple[int, int, float]  # id, attempts, delay
Deferred = tuple[int, int, str]  # id, attempts, why (no handler here)
# Writes of one acknowledgement that end in an error that is neither an outage nor a refusal
# (see _one_by_one): 0.1 + 0.2 + 0.4 + 0.8 s apart, then the job is abandoned to the rescuer.
NO_VERDICT_TRIES = 5


def _columns(items: Sequence[tuple[Any, ...]], count: int) -> list[list[Any]]:
    """The items' fields as one list per field: the arrays a batch statement takes."""
    return [[item[index] for item in items] for index in range(count)]


Item = TypeVar("Item", Completion, Failure, Snoozed, Deferred)


class AckBuffer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        worker_id: UUID,
        batch_size: int,
        metrics: WorkerMetrics,
        tracker: Tracker,
        max_snoozes: int = 100,
    ) -> None:
        self._pool = pool
        self._worker_id = worker_id
        self._batch_size = batch_size
        self._metrics = metrics
        self._tracker = tracker
        self._completed: list[Completion] = []
        self._failed: list[Failure] = []
        self._snoozed: list[Snoozed] = []
        self._deferred: list[Deferred] = []
        # each attempt's error, traceback and log lines, by fencing token (id, attempts):
        # written in the transaction of its acknowledgement, whichever kind that is
        self._stories: dict[tuple[int, int], AttemptStory] = {}
        self._max_snoozes = max_snoozes
        self._wanted = asyncio.Event()
        self._closing = False
        self._deadline: float | None = None

    def complete(
        self, job_id: int, attempts: int, result_json: str, story: AttemptStory | None = None
    ) -> None:
        if story:
            self._stories[job_id, attempts] = story
        self._completed.append((job_id, attempts, result_json))
        self._wanted.set()

    def fail(
        self,
        job_id: int,
        attempts: int,
        error: str,
        retry_delay: float | None,
        story: AttemptStory | None = None,
    ) -> None:
        if story:
            self._stories[job_id, attempts] = story
        self._failed.append((job_id, attempts, error, retry_delay))
        self._wanted.set()

    def snooze(
        self, job_id: int, attempts: int, delay: float, story: AttemptStory | None = None
    ) -> None:
        if story:
            self._stories[job_id, attempts] = story
        self._snoozed.append((job_id, attempts, delay))
        self._wanted.set()

    def defer(self, job_id: int, attempts: int, reason: str) -> None:
        """No handler here: back to pending for another worker, without using up a try."""
        self._deferred.append((job_id, attempts, reason))
        self._wanted.set()

    async def run(self) -> None:
        """Flush until closed and empty."""
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            while self._completed or self._failed or self._snoozed or self._deferred:
                await self._flush()
            if self._closing:
                return

    def close(self, deadline: float) -> None:
        """Write what is left, retrying through outages until `deadline` (time.monotonic())."""
        self._closing = True
        self._deadline = deadline
        self._wanted.set()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    async def _flush(self) -> None:
        await self._flush_batch(
            self._completed,
            "complete",
            self._write_completions,
            self._write_completions_one_by_one,
        )
        await self._flush_batch(
            self._failed, "fail", self._write_failures, self._write_failures_one_by_one
        )
        await self._flush_batch(
            self._snoozed, None, self._write_snoozes, self._write_snoozes_one_by_one
        )
        await self._flush_batch(
            self._deferred, None, self._write_deferrals, self._write_deferrals_one_by_one
        )

    async def _flush_batch(
        self,
        pending: list[Item],
        settling: str | None,
        write: Callable[[list[Item]], Awaitable[int]],
        fallback: Callable[[list[Item]], Awaitable[None]],
    ) -> None:
        """Write the first batch of `pending` and drop it from there; `settling` names the
        batch's tracing operation (None: not traced)."""
        if not pending:
            return
        batch = pending[: self._batch_size]
        with tracing.settling(batch, settling) if settling else contextlib.nullcontext():
            await self._write(batch, write, fallback)
        del pending[: len(batch)]
        if self._stories:
            for item in batch:
                self._stories.pop((item[0], item[1]), None)
        self._tracker.written([(item[0], item[1]) for item in batch])

    async def _write(
        self,
        items: list[Item],
        write: Callable[[list[Item]], Awaitable[int]],
        fallback: Callable[[list[Item]], Awaitable[None]],
    ) -> None:
        try:
            written = await retry_transient(
                partial(write, items), what="acknowledge jobs", give_up=self._past_deadline
            )
        except Exception as exc:
            if is_transient(exc):
                # Past the drain deadline with the database away: the leases will expire and
                # the sweeper will hand these jobs out again.
                log.error("gave up acknowledging %d jobs: %s", len(items), exc)
                self._tracker.abandon(item[0] for item in items)
                return
            log.warning("batch acknowledgement failed (%s); writing one by one", exc)
            await fallback(items)
            return
        if written < len(items):
            self._metrics.stale_acks.inc(len(items) - written)

    async def _acknowledge(
        self, items: Sequence[Item], write: Callable[[Conn], Awaitable[int]]
    ) -> int:
        """One acknowledgement statement; with the stories of its attempts, if any, inserted
        before it in the same transaction (attempts.sql says why)."""
        stories = self._stories
        told = [(i[0], i[1], stories[i[0], i[1]]) for i in items if (i[0], i[1]) in stories]
        async with self._pool.acquire() as conn:
            if not told:
                return await write(conn)
            async with conn.transaction():
                await attempt_stories.record_attempts(conn, self._worker_id, told)
                return await write(conn)

    async def _write_completions(self, items: list[Completion]) -> int:
        ids, attempts, results = _columns(items, 3)
        return await self._acknowledge(
            items, lambda c: claims.complete_jobs(c, self._worker_id, ids, attempts, results)
        )

    async def _write_failures(self, items: list[Failure]) -> int:
        ids, attempts, errors, delays = _columns(items, 4)
        return await self._acknowledge(
            items, lambda c: claims.fail_jobs(c, self._worker_id, ids, attempts, errors, delays)
        )

    async def _write_snoozes(self, items: list[Snoozed]) -> int:
        ids, attempts, delays = _columns(items, 3)
        return await self._acknowledge(
            items,
            lambda c: snoozes.snooze_jobs(
                c, self._worker_id, ids, attempts, delays, self._max_snoozes
            ),
        )

    async def _one_by_one(
        self,
        items: list[Item],
        write: Callable[[list[Item]], Awaitable[int]],
        what: str,
        refused: Callable[[Item, Exception], Awaitable[None]],
    ) -> None:
        """Write each item alone, retrying through outages; `refused` deals with one that the
        database refused (called while its exception is being handled). Any other error is no
        verdict on the job: a server that went down mid-write can leave a pooled connection
        answering "another operation is in progress" for a moment. Such a write is tried again
        a few times; after that the job is abandoned, as when the database stays away past the
        drain deadline: it stays running under this worker, and the rescuer hands it out again
        once this worker's lease lapses. No error of ours fails a job."""
        for item in items:
            for attempt in range(NO_VERDICT_TRIES):
                try:
                    await retry_transient(
                        partial(write, [item]), what=what, give_up=self._past_deadline
                    )
                    break
                except Exception as exc:
                    if is_refusal(exc):
                        await refused(item, exc)
                        break
                    if is_transient(exc) or attempt == NO_VERDICT_TRIES - 1:
                        log.error(
                            "job %d: %s gave up (%s); abandoned to the rescuer", item[0], what, exc
                        )
                        self._tracker.abandon([item[0]])
                        break
                    log.warning("job %d: %s failed (%s); trying again", item[0], what, exc)
                    await asyncio.sleep(0.1 * 2**attempt)

    async def _write_deferrals(self, items: list[Deferred]) -> int:
        ids, attempts, reasons = _columns(items, 3)
        async with self._pool.acquire() as conn:
            return await deferrals.defer_jobs(conn, self._worker_id, ids, attempts, reasons)

    async def _write_deferrals_one_by_one(self, items: list[Deferred]) -> None:
        async def refused(item: Deferred, exc: Exception) -> None:
            log.error("job %d: could not be deferred (%s); left to its lease", item[0], exc)
            self._tracker.abandon([item[0]])

        await self._one_by_one(items, self._write_deferrals, "defer job", refused)

    async def _write_snoozes_one_by_one(self, items: list[Snoozed]) -> None:
        async def refused(item: Snoozed, exc: Exception) -> None:
            # a snooze the database refuses becomes an ordinary failed try
            log.warning("job %d: its snooze could not be recorded: %s", item[0], exc)
            await self._write_failures_one_by_one([(item[0], item[1], str(exc), 0.0)])

        await self._one_by_one(items, self._write_snoozes, "snooze job", refused)

    async def _write_completions_one_by_one(self, items: list[Completion]) -> None:
        async def refused(item: Completion, exc: Exception) -> None:
            # the result itself is what the database refused: the job cannot succeed
            log.warning("job %d: result could not be stored: %s", item[0], exc)
            failure = (item[0], item[1], f"result could not be stored: {exc}", None)
            story = self._stories.get((item[0], item[1]))
            if story is not None:
                story.error = failure[2]
            await self._write_failures_one_by_one([failure])

        await self._one_by_one(items, self._write_completions, "complete job", refused)

    async def _write_failures_one_by_one(self, items: list[Failure]) -> None:
        async def refused(item: Failure, exc: Exception) -> None:
            log.exception("job %d: its failure could not be recorded", item[0])
            self._tracker.abandon([item[0]])

        await self._one_by_one(items, self._write_failures, "fail job", refused)
