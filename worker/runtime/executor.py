"""Running one claimed job: find its handler, apply its timeout, and turn what happened into
an outcome for the acknowledgement buffer."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from functools import partial

from worker.db.claims import ClaimedJob
from worker.handlers.base import HandlerRegistry, HandlerSpec, JobContext, PermanentError
from worker.handlers.snooze import Snooze
from worker.runtime.progress import ProgressWriter
from worker.runtime.resilience import backoff_delay
from worker.settings import WorkerSettings

MAX_ERROR_CHARS = 4000
_STRICT_JSON = json.JSONEncoder(allow_nan=False)  # one encoder, not one per result


@dataclass(slots=True)
class Outcome:
    """ok: result_json holds the result. Otherwise error holds the message, and retry_delay is
    None when the job fails for good; or snooze_seconds is set: run again then, same try."""

    ok: bool
    result_json: str = "null"
    error: str = ""
    retry_delay: float | None = None
    seconds: float = 0.0
    snooze_seconds: float | None = None


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


def unknown_type_error(job_type: str, registry: HandlerRegistry) -> str:
    known = ", ".join(registry.job_types()) or "none"
    return f"unknown job_type {job_type!r}: no handler is registered for it (known: {known})"


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

    def timeout_for(self, job: ClaimedJob, spec: HandlerSpec) -> float | None:
        """The job's own timeout, else its handler's, else the worker's default."""
        if job.timeout_seconds is not None:
            return job.timeout_seconds
        if spec.timeout_seconds is not None:
            return spec.timeout_seconds
        return self._settings.default_job_timeout

    def failure(self, job: ClaimedJob, error: str, *, permanent: bool, started: float) -> Outcome:
        retry = not permanent and job.attempts < job.max_tries
        delay = (
            backoff_delay(job.attempts, self._settings.backoff_base, self._settings.backoff_max)
            if retry
            else None
        )
        return Outcome(
            False, error=clean_error(error), retry_delay=delay, seconds=time.monotonic() - started
        )

    async def run(self, job: ClaimedJob) -> Outcome:
        """Never raises except CancelledError (the caller decides what a cancel means)."""
        started = time.monotonic()
        spec = self._registry.get(job.job_type)
        if spec is None:
            return self.failure(
                job,
                unknown_type_error(job.job_type, self._registry),
                permanent=True,
                started=started,
            )
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
        )
        timeout = self.timeout_for(job, spec)
        scope: asyncio.Timeout | None = None
        try:
            if timeout is None:
                result = await spec.handler(job.payload, context)
            else:
                async with asyncio.timeout(timeout) as scope:
                    result = await spec.handler(job.payload, context)
            if self._progress is not None and self._progress.has_pending(job.id, job.attempts):
                await self._progress.flush_job(job.id, job.attempts)
            if isinstance(result, Snooze):
                raise result
            return Outcome(
                True, result_json=result_to_json(result), seconds=time.monotonic() - started
            )
        except Snooze as exc:
            return Outcome(False, snooze_seconds=exc.seconds, seconds=time.monotonic() - started)
        except PermanentError as exc:
            return self.failure(job, f"permanent error: {exc}", permanent=True, started=started)
        except Exception as exc:
            if isinstance(exc, TimeoutError) and scope is not None and scope.expired():
                message = f"timed out after {timeout:g}s"
            else:
                message = f"{type(exc).__name__}: {exc}"
            return self.failure(job, message, permanent=False, started=started)
