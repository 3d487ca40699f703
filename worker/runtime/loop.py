"""The claim loop and the slots: claim batches sized to the free slots, run each job as a task,
hand outcomes to the acknowledgement buffer, and drain on shutdown.

A slot is taken from the claim until the job's handler returns; the claim that refills it
overlaps the write of the job's acknowledgement (worker.runtime.tracker says how far). A worker
runs at most MAX_CONCURRENT_JOBS handlers, and a drained worker holds no job.

With a liveness lock (worker.runtime.liveness), the loop claims only while the lock is held.
A claim the database refuses for its storage layout (LayoutMismatch) ends the loop for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from uuid import UUID

import asyncpg

from worker import tracing
from worker.db import claims
from worker.db.claims import ClaimedJob
from worker.db.errors import LayoutMismatch, LivenessLost
from worker.runtime.acks import AckBuffer
from worker.runtime.executor import JobRunner, Outcome
from worker.runtime.liveness import Liveness
from worker.runtime.metrics import WorkerMetrics
from worker.runtime.resilience import retry_transient
from worker.runtime.tracker import RunningJob, Tracker
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the worker shut down before the job finished (drain timeout)"


class ClaimLoop:
    def __init__(
        self,
        settings: WorkerSettings,
        runner: JobRunner,
        pool: asyncpg.Pool,
        worker_id: UUID,
        metrics: WorkerMetrics,
        tracker: Tracker,
        liveness: Liveness | None = None,
        on_first_claim: Callable[[], None] | None = None,
        on_layout_mismatch: Callable[[LayoutMismatch], None] | None = None,
    ) -> None:
        self._liveness = liveness
        # the database refused our claims for good (another storage layout): told once
        self._on_layout_mismatch = on_layout_mismatch
        self._on_first_claim = on_first_claim  # called once, after the first claim returns
        self._settings = settings
        self._runner = runner
        self._run_job = tracing.traced_run(runner.run)  # runner.run itself when tracing is off
        self._pool = pool
        self._worker_id = worker_id
        self._metrics = metrics
        self._queues = list(settings.worker_queues)
        self.tracker = tracker
        self._interrupted: set[int] = set()
        self.acks = AckBuffer(
            pool, worker_id, settings.ack_batch_size, metrics, tracker, settings.max_snoozes
        )
        self.wake = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._unknown_claims = False
        # starts and completions: DEBUG, or INFO with JOBQUEUE_LOG_JOBS; failures always log
        self._events_level = logging.INFO if settings.log_jobs else logging.DEBUG
        self._deferred_types: set[str] = set()
        self._claim_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None

    @property
    def running(self) -> dict[int, RunningJob]:
        return self.tracker.running

    def start(self) -> None:
        self._create_task = asyncio.get_running_loop().create_task
        self._claim_task = asyncio.create_task(self.run(), name="claim-loop")
        self._flush_task = asyncio.create_task(self.acks.run(), name="ack-flusher")

    async def stop(self) -> None:
        await self.drain(self._settings.drain_timeout)

    # --- the loop
    async def run(self) -> None:
        while not self._stopping:
            free = self.tracker.free
            if free <= 0:
                self.tracker.slot_freed.clear()
                await self.tracker.slot_freed.wait()
                continue
            if self._liveness is not None and not self._liveness.held.is_set():
                await self._until_live(self._liveness)
                continue
            self.wake.clear()
            self.tracker.slot_freed.clear()
            # Flow control: no NOTIFY says a limit has room again, but the acknowledgement of
            # a limited job does: while one is held, or was when this claim began (its write
            # may land during the claim), a freed slot is worth a new claim.
            limited = bool(self.tracker.limited)
            try:
                jobs = await self._claim(free)
            except LivenessLost:
                if self._liveness is not None:
                    self._liveness.lost()
                continue
            except LayoutMismatch as exc:
                # Not an outage: no retry helps, and the tables may no longer be the ones our
                # statements know. Claim nothing more; running jobs finish as in a drain.
                log.error("claiming stopped: %s", exc)
                if self._on_layout_mismatch is not None:
                    self._on_layout_mismatch(exc)
                return
            except Exception:
                if self._stopping:
                    return
                log.exception("claim failed; trying again in %ss", self._settings.poll_interval)
                await self._sleep_until_woken()
                continue
            if self._stopping:
                await self._give_back(jobs)
                return
            for job in jobs:
                self._start(job)
            if self._on_first_claim is not None:
                first, self._on_first_claim = self._on_first_claim, None
                first()
            if len(jobs) < free:  # a full batch means more may be waiting: claim again at once
                await self._sleep_until_woken(also_on_slot=limited or bool(self.tracker.limited))

    async def _until_live(self, liveness: Liveness) -> None:
        """Wait until the liveness lock is held (or we stop)."""
        tasks = [
            asyncio.ensure_future(liveness.held.wait()),
            asyncio.ensure_future(self._stopped.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()

    async def _sleep_until_woken(self, also_on_slot: bool = False) -> None:
        if not also_on_slot:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.poll_interval):
                    await self.wake.wait()
            return
        tasks = [
            asyncio.ensure_future(self.wake.wait()),
            asyncio.ensure_future(self.tracker.slot_freed.wait()),
        ]
        try:
            await asyncio.wait(
                tasks, timeout=self._settings.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in tasks:
                task.cancel()

    async def _claim(self, limit: int) -> list[ClaimedJob]:
        async def attempt() -> list[ClaimedJob]:
            received: list[ClaimedJob] | None = None
            started = time.perf_counter()
            try:
                async with self.tracker.claim_gate, self._pool.acquire() as conn:
                    if self._unknown_claims:
                        await reconcile(conn, self._worker_id, self.tracker)
                    # Until the reply arrives, a broken connection may have claimed jobs we
                    # never see; the next attempt (or the next heartbeat) gives those back.
                    self._unknown_claims = True
                    received = await claims.claim_jobs(
                        conn,
                        self._queues,
                        limit,
                        self._worker_id,
                        self._settings.lease_seconds,
                        None if self._liveness is None else self._liveness.key,
                    )
                    # Held before anything else can fail, the release of this connection
                    # included: rows whose reply arrived are never forgotten.
                    self.tracker.hold(received)
                    self._unknown_claims = False
            except Exception as exc:
                if received is None:
                    raise
                # The reply arrived; only giving the connection back failed (asyncpg found it
                # mid-protocol, e.g. a server shutting down, and the pool discarded it).
                log.warning("claimed %d jobs, then the connection broke: %r", len(received), exc)
            self._metrics.claim_latency.observe(time.perf_counter() - started)
            self._metrics.claimed.inc(len(received))
            tracing.claimed(received, started)
            return received

        # a stopping worker stops retrying: drain must not wait out an outage for new work
        return await retry_transient(attempt, what="claim jobs", give_up=lambda: self._stopping)

    def _start(self, job: ClaimedJob) -> None:
        self.tracker.start(job, self._create_task(self._execute(job)))

    async def _execute(self, job: ClaimedJob) -> None:
        if log.isEnabledFor(self._events_level):
            log.log(
                self._events_level,
                "job %d (%s) attempt %d/%d started",
                job.id,
                job.job_type,
                job.attempts,
                job.max_tries,
            )
        try:
            outcome = await self._run_job(job)
        except asyncio.CancelledError:
            if job.id not in self._interrupted:
                # cancelled or taken away: the job is no longer ours, so nothing to write
                self.tracker.finished(job.id)
                self.tracker.release([job.id])
                return
            started = self.running[job.id].started
            outcome = self._runner.failure(job, INTERRUPTED, permanent=False, started=started)
            if outcome.retry_delay is not None:  # another worker may take it at once
                outcome = dataclasses.replace(outcome, retry_delay=0.0)
        self.tracker.finished(job.id)
        self._record(job, outcome)

    def _record(self, job: ClaimedJob, outcome: Outcome) -> None:
        if outcome.snooze_seconds is not None:
            self.acks.snooze(job.id, job.attempts, outcome.snooze_seconds, outcome.story)
            return
        if outcome.deferred is not None:
            if job.job_type not in self._deferred_types:  # once per type, not once per job
                self._deferred_types.add(job.job_type)
                log.warning("job %d: %s", job.id, outcome.deferred)
            self.acks.defer(job.id, job.attempts, outcome.deferred)
            return
        final = outcome.retry_delay is None
        self._metrics.job_finished(job.job_type, outcome.seconds, ok=outcome.ok, final=final)
        if outcome.ok:
            if log.isEnabledFor(self._events_level):
                log.log(
                    self._events_level,
                    "job %d (%s) attempt %d completed in %.3fs",
                    job.id,
                    job.job_type,
                    job.attempts,
                    outcome.seconds,
                )
            self.acks.complete(job.id, job.attempts, outcome.result_json, outcome.story)
        else:
            log_failure(job, outcome)
            self.acks.fail(job.id, job.attempts, outcome.error, outcome.retry_delay, outcome.story)

    async def _give_back(self, jobs: list[ClaimedJob]) -> None:
        """Release claimed jobs that never started, without using up a try."""
        if not jobs:
            return

        # no longer held: if the release fails, the final reconcile gives them back
        self.tracker.release(j.id for j in jobs)

        async def attempt() -> int:
            async with self._pool.acquire() as conn:
                return await claims.release_jobs(
                    conn, self._worker_id, [j.id for j in jobs], [j.attempts for j in jobs]
                )

        try:
            released = await retry_transient(
                attempt, what="release jobs", deadline=time.monotonic() + 5
            )
            log.info("released %d claimed jobs that never started", released)
        except Exception:
            log.exception("could not release %d jobs; their leases will expire", len(jobs))

    # --- shutdown
    def stop_claiming(self) -> None:
        self._stopping = True
        self._stopped.set()
        self.wake.set()
        self.tracker.slot_freed.set()

    async def drain(self, seconds: float) -> None:
        """Stop claiming, let running jobs finish within `seconds`, interrupt the rest (a failed
        attempt), and write every acknowledgement."""
        deadline = time.monotonic() + seconds
        self.stop_claiming()
        if self._claim_task is not None:
            _, stuck = await asyncio.wait(
                [self._claim_task], timeout=max(0.0, deadline - time.monotonic())
            )
            for task in stuck:  # still retrying a claim against an absent database
                task.cancel()
        tasks = [entry.task for entry in self.running.values()]
        if tasks:
            log.info("draining %d running jobs (up to %.0fs)", len(tasks), seconds)
            _, late = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
            if late:
                log.warning("interrupting %d jobs still running at the drain timeout", len(late))
                self._interrupted.update(self.running)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        self.acks.close(deadline=max(deadline, time.monotonic()) + 3)
        if self._flush_task is not None:
            await self._flush_task


def log_failure(job: ClaimedJob, outcome: Outcome) -> None:
    """Every failed attempt, with what comes next and the handler's traceback."""
    if outcome.retry_delay is None:
        then = " for good"
    else:
        then = f", will retry in {outcome.retry_delay:.1f}s"
    trace = outcome.story.traceback if outcome.story else None
    log.warning(
        "job %d (%s) attempt %d/%d failed%s: %s%s",
        job.id,
        job.job_type,
        job.attempts,
        job.max_tries,
        then,
        outcome.error,
        f"\n{trace}" if trace else "",
    )


async def reconcile(conn: claims.Conn, worker_id: UUID, tracker: Tracker) -> int:
    """Give back every row running under `worker_id` that the tracker does not hold. The
    caller holds the tracker's claim gate, so no claim reply is on its way."""
    released = await claims.release_unknown_jobs(conn, worker_id, tracker.known_ids())
    if released:
        log.warning("reconcile: gave back %d running jobs this worker did not hold", released)
    return released
