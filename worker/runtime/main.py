"""`jobqueue worker`: one process, at most three database connections (a LISTEN connection,
which also holds the worker's liveness lock, and a pool of two shared by claims,
acknowledgements, heartbeat and sweeps)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import sys
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from worker import tracing
from worker.db import claims, startups, workers
from worker.db.connection import create_pool, keep_session
from worker.db.errors import LayoutMismatch
from worker.handlers.base import HandlerRegistry, UnknownDisabledHandler
from worker.handlers.config import configure as configure_builtins
from worker.runtime.cleaner import prune_once
from worker.runtime.executor import JobRunner
from worker.runtime.heartbeat import Heartbeat
from worker.runtime.http import HealthServer
from worker.runtime.liveness import lock_connect_kwargs, new_liveness
from worker.runtime.loop import ClaimLoop
from worker.runtime.metrics import WorkerMetrics
from worker.runtime.progress import ProgressWriter
from worker.runtime.rescuer import LIVENESS_SWEEP_SECONDS, rescue_dead_once, rescue_once
from worker.runtime.resilience import retry_transient
from worker.runtime.ring import TURN_EVERY_MS, turn_once
from worker.runtime.services import PeriodicService, Service, TaskService
from worker.runtime.startup import StartupTimeline
from worker.runtime.tracker import Tracker
from worker.runtime.waker import Waker
from worker.settings import WorkerSettings

log = logging.getLogger("worker")

POOL_SIZE = 2  # plus the LISTEN connection: three per process, whatever the concurrency
SHUTDOWN_WRITES_SECONDS = 5.0  # after the drain: final release, deregistration and close


class PortBusy(RuntimeError):
    """The explicitly set health port is taken; the message names the setting."""


class WorkerProcess:
    def __init__(
        self,
        settings: WorkerSettings,
        registry: HandlerRegistry,
        *,
        dsn: str,
        startup: StartupTimeline | None = None,
    ) -> None:
        self.settings = settings
        self.dsn = dsn
        self.registry = registry
        self.id = uuid.uuid4()
        self.metrics = WorkerMetrics()
        self.draining = False
        self._services: list[Service] = []
        self.tracker = Tracker(settings.max_concurrent_jobs)
        self.startup = startup or StartupTimeline()
        self.startup.mark("imported")  # the caller marks it sooner, when it knows
        self.stop_requested = asyncio.Event()  # a signal, or a refusal no retry can fix
        self.refused: LayoutMismatch | None = None
        self._first_claimed = asyncio.Event()

    @property
    def application_name(self) -> str:
        return f"jobqueue-worker {self.settings.worker_name}"[:63]

    async def start(self) -> None:
        """Connect, register, and claim at once: on a cold start every step here is on the
        way from a burst to its first job, so the services start after the first claim."""
        settings = self.settings
        configure_builtins(settings.handlers)  # the built-in handlers' folders and SMTP
        # before the claim loop takes its hooks
        tracing.setup(settings.tracing, "jobqueue-worker", str(self.id))
        # every statement, reply and wait for a connection has its deadline
        connect_kwargs = settings.timeouts.connect_kwargs(
            {"application_name": self.application_name}
        )
        self.pool = await create_pool(
            self.dsn,
            min_size=1,
            max_size=POOL_SIZE,
            acquire_timeout=settings.timeouts.db_acquire_timeout,
            reset=keep_session,  # its statements leave no session state: no reset round trip
            **connect_kwargs,
        )
        self.startup.mark("connected")
        self.progress = ProgressWriter(self.pool, self.id)
        self.runner = runner = JobRunner(settings, self.registry, str(self.id), self.progress)
        tracker = self.tracker
        deadline = time.monotonic() + 30
        liveness = await retry_transient(
            lambda: new_liveness(self.pool), what="register worker", deadline=deadline
        )
        self.liveness = liveness
        self.loop = ClaimLoop(
            settings,
            runner,
            self.pool,
            self.id,
            self.metrics,
            tracker,
            liveness,
            on_first_claim=self._first_claim,
            on_layout_mismatch=self._layout_mismatch,
        )
        self.metrics.track_in_flight(lambda: tracker.in_flight)
        self.heartbeat = Heartbeat(self.pool, settings, self.id, tracker, liveness.key)
        liveness.on_regained(self.heartbeat.check_soon)
        await retry_transient(self.heartbeat.beat, what="register worker", deadline=deadline)
        self.startup.mark("registered")
        self.waker = Waker(
            self.dsn,
            settings.worker_queues,
            self.loop.wake.set,
            self._on_cancel,
            lock_connect_kwargs(connect_kwargs),
            liveness,
        )
        await self._start_http()  # before the first claim: a busy port must not strand jobs
        self.loop.start()
        self._services = [TaskService("waker", self.waker.run)]
        self._services.append(TaskService("heartbeat", self.heartbeat.run))
        self._services.append(TaskService("progress", self.progress.run))
        pool = self.pool
        self._services.append(
            PeriodicService("ready ring", TURN_EVERY_MS / 1000, lambda: turn_once(pool))
        )
        if settings.rescue_enabled:
            liveness.sweep_with(
                lambda conn: rescue_dead_once(conn, liveness),
                min(LIVENESS_SWEEP_SECONDS, settings.rescue_interval),
            )
            self._services.append(
                PeriodicService(
                    "lease rescue",
                    settings.rescue_interval,
                    lambda: rescue_once(self.pool, settings, self.id, tracker, liveness),
                )
            )
        if settings.retention_seconds > 0:
            self._services.append(
                PeriodicService(
                    "retention",
                    settings.retention_interval,
                    lambda: prune_once(self.pool, settings),
                )
            )
        if settings.scheduler_enabled:
            self._services.append(TaskService("scheduler", self._run_scheduler))
        for service in self._services:
            service.start()
        log.info(
            "worker %s (%s) serving queues %s with %d slots; health on port %d",
            self.id,
            settings.worker_name,
            ",".join(settings.worker_queues),
            settings.max_concurrent_jobs,
            self.http.port,
        )

    def _layout_mismatch(self, exc: LayoutMismatch) -> None:
        """The database was migrated to a storage layout this release does not know (or not
        yet to its own): drain and exit, so that the rollout's new pods take over."""
        self.refused = exc
        self.stop_requested.set()

    def _first_claim(self) -> None:
        """The start is complete: say how long each phase took, and record it for the
        controller's cold-start timeline (one write, off the claim path)."""
        self.startup.mark("firstClaim")
        self._first_claimed.set()
        for phase, seconds in self.startup.seconds():
            self.metrics.startup.labels(phase).set(seconds)
        log.info("started: %s, after the process started", self.startup.describe())
        self._startup_write = asyncio.get_running_loop().create_task(self._record_startup())

    async def _run_scheduler(self) -> None:
        """The scheduler, once the first claim is made: its imports (cron, the jobs module and
        its checks) are a tenth of a cold start, and not on the way from a burst to its first
        job (issue 27). It waits one scheduler interval at most, the longest it sleeps between
        passes anyway, so that a worker that cannot claim still fires schedules."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_claimed.wait(), self.settings.scheduler_interval)
        from worker.runtime.scheduler import Scheduler

        self.scheduler = Scheduler(self.pool, self.settings, self.registry.schedules())
        await self.scheduler.run()

    async def _record_startup(self) -> None:
        try:
            async with self.pool.acquire() as conn:
                await startups.update_worker_startup(conn, self.id, self.startup.moments)
        except Exception as exc:  # a lost record costs a timeline, never a job
            log.debug("could not record the start's phases: %r", exc)

    async def _start_http(self) -> None:
        """Bind the health port. Several workers on one host with default settings must all
        run: a busy default port falls back to a free one; a busy port that was asked for is
        an error naming the setting."""
        settings = self.settings
        port = settings.worker_port
        for attempt in (port, 0):
            self.http = HealthServer(
                "0.0.0.0", attempt, self.metrics.registry, self.health, ready=self.ready
            )
            try:
                await self.http.start()
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 0:
                    raise
                if "worker_port" in settings.model_fields_set:
                    raise PortBusy(
                        f"JOBQUEUE_WORKER_PORT={port}: the port is already in use; "
                        "choose another, or leave it unset to take a free one"
                    ) from None
        if port and self.http.port != port:  # 0 asked for any free port
            log.info("health port %d is in use; serving health on port %d", port, self.http.port)

    def _on_cancel(self, job_id: int) -> None:
        if job_id in self.tracker.running:
            self.heartbeat.check_soon()

    def health(self) -> dict[str, Any]:
        last = self.heartbeat.last_beat
        return {
            "healthy": True,
            "worker_id": str(self.id),
            "name": self.settings.worker_name,
            "queues": self.settings.worker_queues,
            "concurrency": self.settings.max_concurrent_jobs,
            "in_flight": self.tracker.in_flight,
            "draining": self.draining,
            "listening": self.waker.connected.is_set(),
            "liveness_lock": self.liveness.held.is_set(),
            "seconds_since_heartbeat": None if last is None else round(time.monotonic() - last, 3),
        }

    def ready(self) -> dict[str, Any]:
        """Ready while the heartbeat lands (so the database answers) and not draining."""
        body = self.health()
        since = body["seconds_since_heartbeat"]
        body["healthy"] = (
            not self.draining and since is not None and since < self.settings.lease_seconds
        )
        return body

    async def shutdown(self) -> None:
        """Drain: stop claiming, finish or interrupt running jobs, write every acknowledgement,
        give back anything still claimed, deregister, close."""
        self.draining = True
        log.info("draining (up to %.0fs)", self.settings.drain_timeout)
        await self.loop.drain(self.settings.drain_timeout)
        self.runner.threads.close()
        self.liveness.retire()
        for service in reversed(self._services):
            await service.stop()
        # One budget for what follows the drain, a hung attempt included: the pod's grace
        # period is the drain timeout plus a few seconds, and the kubelet's SIGKILL ends it.
        # Jobs a lost write leaves behind are rescued (the liveness lock ends with us).
        finish_by = time.monotonic() + SHUTDOWN_WRITES_SECONDS
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                retry_transient(self._final_writes, what="deregister", deadline=finish_by),
                SHUTDOWN_WRITES_SECONDS,
            )
        await self.http.close()
        try:
            await asyncio.wait_for(self.pool.close(), max(0.5, finish_by - time.monotonic()))
        except Exception:  # a timeout included
            self.pool.terminate()
        log.info("worker %s stopped", self.id)

    async def _final_writes(self) -> None:
        async with self.pool.acquire() as conn:
            # Nothing runs any more: a job still running under our id that we do not know of
            # is one whose claim reply was lost; it never started.
            released = await claims.release_unknown_jobs(conn, self.id, self.tracker.known_ids())
            if released:
                log.info("released %d claimed jobs that never started", released)
            await workers.deregister_worker(conn, self.id)


async def serve(
    settings: WorkerSettings,
    registry: HandlerRegistry,
    dsn: str,
    startup: StartupTimeline | None = None,
) -> int:
    """Run until SIGTERM or SIGINT, then drain. Exits 2 after a drain the database asked for
    (its storage layout is not this release's)."""
    process = WorkerProcess(settings, registry, dsn=dsn, startup=startup)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, process.stop_requested.set)
    await process.start()
    await process.stop_requested.wait()
    await process.shutdown()
    if process.refused is not None:  # the last line a pod's termination message shows
        print(f"jobqueue worker: exiting: {process.refused}", file=sys.stderr)
        return 2
    return 0


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # the lean install: uvloop comes with the api extra's uvicorn[standard]
        return asyncio.run(coro)
    return uvloop.run(coro)


def run_worker(settings: WorkerSettings, dsn: str) -> int:
    """The process's logging is set up by its caller, which holds the shared settings."""
    import worker.handlers  # noqa: F401 - the built-in handlers register on import
    from worker.handlers import registry

    registry.load_modules(settings.handler_modules)
    startup = StartupTimeline()
    startup.mark("imported")  # the users' handler modules included
    try:
        enabled = registry.without(settings.handlers.limits.disabled_handlers)
    except UnknownDisabledHandler as exc:
        print(f"jobqueue worker: {exc}", file=sys.stderr)  # one line, never a traceback
        return 2
    try:
        return _run(serve(settings, enabled, dsn, startup))
    except PortBusy as exc:
        print(f"jobqueue worker: {exc}", file=sys.stderr)  # one line, never a traceback
        return 2
