"""Running one claimed job: find its handler, apply its timeout, and turn what happened into
an outcome for the acknowledgement buffer."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from worker.db.attempts import AttemptStory
from worker.db.claims import ClaimedJob
from worker.handlers.base import HandlerRegistry, HandlerSpec, JobContext, PermanentError
from worker.handlers.snooze import Snooze
from worker.runtime.progress import ProgressWriter
from worker.runtime.resilience import backoff_delay
from worker.runtime.story import JobLog, format_traceback
from worker.runtime.threads import SyncHandlerThreads
from worker.settings import WorkerSettings

MAX_ERROR_CHARS = 4000
_STRICT_JSON = json.JSONEncoder(allow_nan=False)  # one encoder, not one per result


@dataclass(slots=True)
class Outcome:
    """ok: result_json holds the result. Otherwise error holds the message, and retry_delay is
    None when the job fails for good; or snooze_seconds is set: run again then, same try.
    story: the attempt's traceback and log lines, when it has any."""

    ok: bool
    result_json: str = "null"
    error: str = ""
    retry_delay: float | None = None
    seconds: float = 0.0
    snooze_seconds: float | None = None
    story: AttemptStory | None = None
    deferred: str | None = None  # no handler here: why, for last_error (no try is used)


def clean_error(message: str) -> str:
    """PostgreSQL text cannot hold NUL, and a traceback-sized message helps nobody."""
    message = message.replace("\x00", "")
    return message if len(message) <= MAX_ERROR_CHARS else message[:MAX_ERROR_CHARS] + "..."


def result_to_json(result: object) -> str:
    """Strict JSON that jsonb accepts; raises PermanentError otherwise."""
    if result is None:  # the common answers of fire-and-forget handlers, without the encoder
        return "null"
    if type(result) is dict and not result:
        return "{}"
    try:
        text = _STRICT_JSON.encode(result)
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"handler returned a result that is not JSON: {exc}") from exc
    if "\\u0000" in text:
        raise PermanentError("handler returned a result with a NUL character, which jsonb refuses")
    return text


def unknown_type_error(job_type: str, registry: HandlerRegistry, worker_name: str) -> str:
    extra = registry.missing_extras.get(job_type)
    if extra is not None:  # a built-in left out of a lean install
        has = f"it is a built-in that needs the '{extra}' extra: pip install 'job-queue[{extra}]'"
    else:
        has = f"it has: {', '.join(registry.job_types()) or 'none'}"
    return (
        f"no handler for job_type {job_type!r} in worker {worker_name} ({has}); "
        "waiting for a worker that has one, without using a try"
    )


class JobRunner:
    def __init__(
        self,
        settings: WorkerSettings,
        registry: HandlerRegistry,
        worker_id: str,
        progress: ProgressWriter | None = None,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._worker_id = worker_id
        self._progress = progress
        self.threads = SyncHandlerThreads(
            settings.sync_handler_threads or settings.max_concurrent_jobs
        )

    def timeout_for(self, job: ClaimedJob, spec: HandlerSpec) -> float | None:
        """The job's own timeout, else its handler's, else the worker's default."""
        if job.timeout_seconds is not None:
            return job.timeout_seconds
        if spec.timeout_seconds is not None:
            return spec.timeout_seconds
        return self._settings.default_job_timeout

    def failure(
        self,
        job: ClaimedJob,
        error: str,
        *,
        permanent: bool,
        started: float,
        story: AttemptStory | None = None,
    ) -> Outcome:
        retry = not permanent and job.attempts < job.max_tries
        delay = (
            backoff_delay(job.attempts, self._settings.backoff_base, self._settings.backoff_max)
            if retry
            else None
        )
        story = story if story is not None else AttemptStory()
        story.error = clean_error(error)
        return Outcome(
            False,
            error=story.error,
            retry_delay=delay,
            seconds=time.monotonic() - started,
            story=story,
        )

    def _call(self, spec: HandlerSpec, payload: dict[str, Any], context: JobContext) -> Any:
        """The handler's awaitable: an `async def` on this loop, a `def` in the thread pool."""
        if spec.is_async:
            return spec.handler(payload, context)
        return self.threads.call(spec.handler, payload, context)  # type: ignore[arg-type]

    async def run(self, job: ClaimedJob) -> Outcome:
        """Never raises except CancelledError (the caller decides what a cancel means)."""
        started = time.monotonic()
        joblog = JobLog()
        spec = self._registry.get(job.job_type)
        if spec is None:
            if self._registry.is_disabled(job.job_type):  # turned off on purpose: for good
                return Outcome(
                    False,
                    error=f"job_type {job.job_type!r} is disabled on worker "
                    f"{self._settings.worker_name} (JOBQUEUE_DISABLED_HANDLERS)",
                    seconds=time.monotonic() - started,
                )
            # a rolling deploy: another worker may know it
            reason = unknown_type_error(job.job_type, self._registry, self._settings.worker_name)
            return Outcome(False, deferred=reason, seconds=time.monotonic() - started)
        context = JobContext.for_job(
            job.id,
            job.job_type,
            job.queue_name,
            job.attempts,
            job.max_tries,
            self._worker_id,
            self._settings.worker_name,
            None
            if self._progress is None
            else partial(self._progress.report, job.id, job.attempts),
            None if spec.is_async else threading.Event(),
            joblog,
        )
        timeout = self.timeout_for(job, spec)
        scope: asyncio.Timeout | None = None
        try:
            if timeout is None:
                result = await self._call(spec, job.payload, context)
            else:
                async with asyncio.timeout(timeout) as scope:
                    result = await self._call(spec, job.payload, context)
            if self._progress is not None and self._progress.has_pending(job.id, job.attempts):
                await self._progress.flush_job(job.id, job.attempts)
            if isinstance(result, Snooze):
                raise result
            return Outcome(
                True,
                result_json=result_to_json(result),
                seconds=time.monotonic() - started,
                story=joblog.story or None,
            )
        except Snooze as exc:
            return Outcome(False, snooze_seconds=exc.seconds, seconds=time.monotonic() - started)
        except PermanentError as exc:
            story = joblog.story
            story.traceback = format_traceback(exc)
            message = f"permanent error: {exc}"
            return self.failure(job, message, permanent=True, started=started, story=story)
        except Exception as exc:
            story = joblog.story
            if isinstance(exc, TimeoutError) and scope is not None and scope.expired():
                message = f"timed out after {timeout:g}s"
            else:
                message = f"{type(exc).__name__}: {exc}"
                story.traceback = format_traceback(exc)
            return self.failure(job, message, permanent=False, started=started, story=story)
