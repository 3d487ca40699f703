"""Test helpers: run a task in-process, with no database, the way a worker would.

    from jobqueue.testing import run_task

    def test_thumbnail():
        run = run_task(thumbnail, Thumbnail(url="https://example.com/a.png", width=64))
        assert run.status == "completed"
        assert run.result == {"width": 64}
        assert run.progress == [(0.5, "fetched")]

`run_task` goes through the worker's own job runner (worker.runtime.executor.JobRunner), with a
real JobContext: the payload is stored as JSON and validated into the task's model as in a
worker, `ctx.progress()` and `ctx.logger` are recorded, a `Snooze` or a `PermanentError` ends
the run as it would end the attempt, and a result that is not JSON is refused as the worker
refuses it.

`eager()` makes every `enqueue` (of a task, or `jobqueue.enqueue` by job type) run the job at
once in-process instead of storing it, as Celery's `task_always_eager` does; the runs are kept
for the test to look at. Tries are run one after another, without the backoff's wait.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from jobqueue import tasks
from jobqueue.tasks import Task
from worker.db.claims import ClaimedJob
from worker.errors import JobQueueError
from worker.handlers.base import HandlerRegistry, HandlerSpec, registry
from worker.job_checks import PreparedJob
from worker.runtime.executor import JobRunner
from worker.settings import WorkerSettings

Status = Literal["completed", "retry", "failed", "snoozed"]

__all__ = ["EagerRuns", "TaskFailed", "TaskRun", "eager", "run_task", "run_task_async"]


class TaskFailed(JobQueueError):
    """Raised by eager mode when an enqueued job fails for good; `run` holds the details."""

    def __init__(self, run: TaskRun) -> None:
        super().__init__(f"job {run.job_id} ({run.job_type}) failed: {run.error}")
        self.run = run


@dataclass
class TaskRun:
    """What one attempt (or, in eager mode, the last attempt) of a job came to."""

    job_id: int
    job_type: str
    payload: dict[str, Any]
    attempt: int
    status: Status
    result: Any = None
    error: str | None = None
    exception: BaseException | None = None  # what the function raised, if it raised
    traceback: str | None = None  # as a worker stores it with the attempt (GET /jobs/{id})
    snooze_seconds: float | None = None
    progress: list[tuple[float, str | None]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (level, message)


class _Progress:
    """Stands in for the worker's progress writer: keeps every report in order."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, str | None]] = []

    def report(self, job_id: int, attempts: int, fraction: float, message: str | None) -> None:
        self.reports.append((fraction, message))

    def has_pending(self, job_id: int, attempts: int) -> bool:
        return False

    async def flush_job(self, job_id: int, attempts: int) -> None:
        return None


class _Logs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelname, record.getMessage()))


def _recording(spec: HandlerSpec, raised: list[BaseException]) -> HandlerSpec:
    """The spec with its handler noting what it raises (the runner keeps only the text). It
    keeps the handler's kind, so the runner runs a plain `def` in its thread pool, off the
    event loop, as a worker does: the same timeout, and `ctx.cancelled` when it expires."""
    handler = spec.handler
    if spec.is_async:

        async def run(payload: dict[str, Any], ctx: Any) -> Any:
            __tracebackhide__ = True
            try:
                return await handler(payload, ctx)  # type: ignore[misc]
            except BaseException as exc:
                raised.append(exc)
                raise

        return HandlerSpec(run, spec.timeout_seconds, spec.origin)

    def run_sync(payload: dict[str, Any], ctx: Any) -> Any:
        __tracebackhide__ = True
        try:
            return handler(payload, ctx)
        except BaseException as exc:
            raised.append(exc)
            raise

    return HandlerSpec(run_sync, spec.timeout_seconds, spec.origin)


def _job_type(target: Task[Any, Any] | str) -> str:
    return target.name if isinstance(target, Task) else target


async def _attempt(
    job_type: str,
    payload: dict[str, Any],
    *,
    job_id: int,
    attempt: int,
    max_tries: int,
    queue_name: str,
    timeout_seconds: float | None,
    source: HandlerRegistry,
) -> TaskRun:
    spec = source.get(job_type)
    raised: list[BaseException] = []
    one = HandlerRegistry()
    if spec is not None:
        one._specs[job_type] = _recording(spec, raised)
    progress = _Progress()
    runner = JobRunner(WorkerSettings(), one, "jobqueue-testing", progress)  # type: ignore[arg-type]
    logs = _Logs()
    logger = logging.getLogger(f"worker.handlers.{job_type}")
    logger.addHandler(logs)
    level = logger.level
    logger.setLevel(min(level or logging.DEBUG, logging.DEBUG))
    try:
        claimed = ClaimedJob(
            job_id, job_type, payload, queue_name, attempt, max_tries, timeout_seconds
        )
        outcome = await runner.run(claimed)
    finally:
        runner.threads.close()
        logger.removeHandler(logs)
        logger.setLevel(level)
    status: Status
    if outcome.ok:
        status = "completed"
    elif outcome.snooze_seconds is not None:
        status = "snoozed"
    else:
        status = "retry" if outcome.retry_delay is not None else "failed"
    return TaskRun(
        job_id=job_id,
        job_type=job_type,
        payload=payload,
        attempt=attempt,
        status=status,
        result=json.loads(outcome.result_json) if outcome.ok else None,
        error=None if outcome.ok else (outcome.error or None),
        exception=raised[-1] if raised else None,
        traceback=outcome.story.traceback if outcome.story is not None else None,
        snooze_seconds=outcome.snooze_seconds,
        progress=progress.reports,
        logs=logs.lines,
    )


async def run_task_async(
    target: Task[Any, Any] | str,
    payload: Any = None,
    *,
    attempt: int = 1,
    max_tries: int = 3,
    job_id: int = 1,
    queue_name: str = "default",
    timeout_seconds: float | None = None,
) -> TaskRun:
    """One attempt of a job of this task (or job type) with this payload, in-process."""
    job_type = _job_type(target)
    data = target.dump(payload) if isinstance(target, Task) else (payload or {})
    return await _attempt(
        job_type,
        data,
        job_id=job_id,
        attempt=attempt,
        max_tries=max_tries,
        queue_name=queue_name,
        timeout_seconds=timeout_seconds,
        source=registry,
    )


def run_task(target: Task[Any, Any] | str, payload: Any = None, **job: Any) -> TaskRun:
    """`run_task_async` for a plain (not async) test."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # run outside this handler: a task's exceptions get no "during handling" context
    else:
        raise RuntimeError("run_task is for plain tests; in an async test, await run_task_async")
    return asyncio.run(run_task_async(target, payload, **job))


@dataclass
class EagerRuns:
    """What eager mode ran: every job's runs, in order (a retried job has several)."""

    runs: list[TaskRun] = field(default_factory=list)
    propagate: bool = True
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def of(self, target: Task[Any, Any] | str) -> list[TaskRun]:
        job_type = _job_type(target)
        return [run for run in self.runs if run.job_type == job_type]

    async def run(self, job: PreparedJob) -> int:
        job_id = next(self._ids)
        options = job.options
        for attempt in range(1, options.max_tries + 1):
            outcome = await _attempt(
                job.job_type,
                job.payload,
                job_id=job_id,
                attempt=attempt,
                max_tries=options.max_tries,
                queue_name=options.queue_name,
                timeout_seconds=options.timeout_seconds,
                source=registry,
            )
            self.runs.append(outcome)
            if outcome.status != "retry":
                break
        if outcome.status == "failed" and self.propagate:
            raise TaskFailed(outcome)
        return job_id


@contextmanager
def eager(*, propagate: bool = True) -> Iterator[EagerRuns]:
    """Within the block, every enqueue runs its job in-process at once and returns a made-up
    id; a job that fails for good raises TaskFailed unless `propagate=False`."""
    runs = EagerRuns(propagate=propagate)
    before, tasks.eager_runner = tasks.eager_runner, runs.run
    try:
        yield runs
    finally:
        tasks.eager_runner = before
