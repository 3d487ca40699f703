"""What a handler is: a function of (payload, context) that returns a JSON result; and the
registry that maps job types to handlers, and to the checks their payloads must pass. An
`async def` runs on the worker's event loop; a plain `def` runs in a bounded thread pool
(worker/runtime/threads.py), under the same timeout and cancellation rules."""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from worker.errors import JobQueueError, TaskConflict

if TYPE_CHECKING:
    from worker.db.schedules import ScheduleDef


class PermanentError(JobQueueError):
    """Raised by a handler when retrying cannot help (bad input): the job fails at once."""


@dataclass(frozen=True)
class JobContext:
    """What a handler gets beside its payload: the job's fields, a logger, and a way to report
    progress. No settings: a handler that needs a folder, a server or a database of its own
    reads its own setting for it (the built-ins read theirs in worker.handlers.config)."""

    job_id: int
    job_type: str
    queue_name: str
    attempt: int
    max_tries: int
    worker_id: str = ""
    worker_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # --- progress (docs/workflows.md): where ctx.progress() reports go; None outside a worker
    progress_sink: ProgressSink | None = field(default=None, repr=False, compare=False)
    # --- a plain `def` handler's stop signal: set when its job times out or is cancelled
    stop_event: threading.Event | None = field(default=None, repr=False, compare=False)
    # --- where the lines of ctx.logger go besides the worker's log: the job's own log
    log_sink: LogSink | None = field(default=None, repr=False, compare=False)

    @property
    def cancelled(self) -> bool:
        """True once the job timed out or was cancelled. Python cannot stop a thread, so a
        long-running `def` handler should check this in its loops and return early; an
        `async def` handler is cancelled at its next `await` instead."""
        return self.stop_event is not None and self.stop_event.is_set()

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report how far the job is, 0..1, with an optional message. Cheap, and safe from a
        thread: the worker stores the latest report at most once per second."""
        if self.progress_sink is not None:
            self.progress_sink(fraction, message)

    @property
    def logger(self) -> logging.Logger:
        """`worker.handlers.<job_type>`. In a worker, what it logs is also kept with the job
        (GET /jobs/{id} `logs`, the console's job page), at most 64 KiB per job."""
        shared = logging.getLogger(f"worker.handlers.{self.job_type}")
        if self.log_sink is None:
            return shared
        own = vars(self).get("_job_logger")
        if own is None:  # made on first use: jobs that never log pay nothing
            own = vars(self)["_job_logger"] = JobLogger(shared, self.log_sink)
        return own

    @classmethod
    def for_job(
        cls,
        job_id: int,
        job_type: str,
        queue_name: str,
        attempt: int,
        max_tries: int,
        worker_id: str,
        worker_name: str,
        progress_sink: ProgressSink | None = None,
        stop_event: threading.Event | None = None,
        log_sink: LogSink | None = None,
    ) -> JobContext:
        """The runtime's constructor, once per job: the very object `JobContext(...)` makes,
        without a frozen dataclass's `object.__setattr__` per field, which costs a tenth of a
        no-op job's worker CPU. tests/unit/test_handler_context.py keeps the two equal."""
        ctx = object.__new__(cls)
        vars(ctx).update(
            {
                "job_id": job_id,
                "job_type": job_type,
                "queue_name": queue_name,
                "attempt": attempt,
                "max_tries": max_tries,
                "worker_id": worker_id,
                "worker_name": worker_name,
                "extra": {},
                "progress_sink": progress_sink,
                "stop_event": stop_event,
                "log_sink": log_sink,
            }
        )
        return ctx


ProgressSink = Callable[[float, "str | None"], None]
LogSink = Callable[[logging.LogRecord], None]


class JobLogger(logging.Logger):
    """One job's logger: the job type's logger (its level, handlers and name), whose records
    also go to the job's own log. Not registered with logging's manager, so it goes with the
    job."""

    def __init__(self, shared: logging.Logger, sink: LogSink) -> None:
        super().__init__(shared.name)
        self.parent = shared
        self._sink = sink

    def handle(self, record: logging.LogRecord) -> None:
        self._sink(record)
        super().handle(record)  # on to the worker's own log, through the shared logger


JSONResult = dict[str, Any] | list[Any] | str | int | float | bool | None
AsyncHandler = Callable[[dict[str, Any], JobContext], Awaitable[JSONResult]]
SyncHandler = Callable[[dict[str, Any], JobContext], JSONResult]
Handler = AsyncHandler | SyncHandler
HandlerT = TypeVar("HandlerT", bound=Handler)  # keeps a decorated function's own type
# A check of a payload that the API and the CLI run at enqueue time: raises InvalidPayload
# naming the field (worker.handlers.payload), returns anything.
PayloadCheck = Callable[[Any], object]


def is_async_handler(handler: Callable[..., Any]) -> bool:
    """An `async def` function (or an object whose __call__ is one): it runs on the event loop.
    Anything else is called in a thread, and an awaitable it returns is awaited on the loop."""
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - a callable object's own method
    return call is not None and inspect.iscoroutinefunction(call)


@dataclass(frozen=True)
class HandlerSpec:
    handler: Handler
    timeout_seconds: float | None = None
    # where a typed task was declared ("path:line"), to name both places of a clash
    origin: str | None = None
    # decided once, at registration: the runtime never inspects a handler per job
    is_async: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_async", is_async_handler(self.handler))


class HandlerRegistry:
    """Handlers keyed by job_type, and the payload checks of the job types that declare one."""

    def __init__(self) -> None:
        self._specs: dict[str, HandlerSpec] = {}
        self._schedules: dict[str, ScheduleDef] = {}
        self._payload_checks: dict[str, PayloadCheck] = {}
        # built-in job types left out because their extra is missing: job type -> extra
        self.missing_extras: dict[str, str] = {}
        self._disabled: frozenset[str] = frozenset()

    def register(
        self, job_type: str, *, timeout_seconds: float | None = None
    ) -> Callable[[HandlerT], HandlerT]:
        """Decorator; a later registration of the same job_type replaces the earlier one."""

        def decorate(handler: HandlerT) -> HandlerT:
            self._specs[job_type] = HandlerSpec(handler, timeout_seconds)
            return handler

        return decorate

    def add_task(
        self,
        job_type: str,
        spec: HandlerSpec,
        check: PayloadCheck | None,
        describe: Callable[[HandlerSpec], str],
    ) -> None:
        """A typed task's handler and payload check. Two tasks with one name are an error
        naming both places; the same declaration seen again (its module imported under a
        second name, or reloaded) replaces itself. `describe` names a spec's place."""
        held = self._specs.get(job_type)
        if held is not None and held.origin != spec.origin:
            raise TaskConflict(
                f"two tasks are named {job_type!r}: {describe(held)} and {spec.origin}; "
                "give one of them another name (@jobqueue.task(name=...))"
            )
        self._specs[job_type] = spec
        if check is None:
            self._payload_checks.pop(job_type, None)
        else:
            self._payload_checks[job_type] = check

    def declare_payload(self, job_type: str, check: PayloadCheck) -> None:
        self._payload_checks[job_type] = check

    def payload_check(self, job_type: str) -> PayloadCheck | None:
        """What a job type's payload must pass, if it declared anything."""
        return self._payload_checks.get(job_type)

    def periodic(
        self, job_type: str, *, timeout_seconds: float | None = None, **schedule: Any
    ) -> Callable[[HandlerT], HandlerT]:
        """`register`, plus a schedule that enqueues this job type: `cron=` (five fields, with
        `timezone=`) or `every_seconds=`; also `name=` (default: the job type), `payload=`,
        `queue_name=`, `priority=`, `max_tries=`, `tick_field=` and `catch_up=` ('one' or
        'skip'). Stack it to run one handler on several schedules. See docs/scheduling.md."""
        from worker.handlers.periodic import PeriodicSpec

        definition = PeriodicSpec(**schedule).definition(job_type)
        register = self.register(job_type, timeout_seconds=timeout_seconds)

        def decorate(handler: HandlerT) -> HandlerT:
            self._schedules[definition.name] = definition
            return register(handler)

        return decorate

    def schedules(self) -> list[ScheduleDef]:
        """The schedules declared with `periodic`, by name."""
        return [self._schedules[name] for name in sorted(self._schedules)]

    def get(self, job_type: str) -> HandlerSpec | None:
        return self._specs.get(job_type)

    def is_disabled(self, job_type: str) -> bool:
        """Turned off here by JOBQUEUE_DISABLED_HANDLERS: unlike a type no handler knows,
        which another worker of a rolling deploy may have, this one is refused on purpose."""
        return job_type in self._disabled

    def unregister(self, job_type: str) -> None:
        self._specs.pop(job_type, None)
        self._payload_checks.pop(job_type, None)
        for name in [n for n, s in self._schedules.items() if s.job.job_type == job_type]:
            del self._schedules[name]

    def job_types(self) -> list[str]:
        return sorted(self._specs)

    def without(self, disabled: list[str]) -> HandlerRegistry:
        """A copy with the handlers JOBQUEUE_DISABLED_HANDLERS names left out (and their
        schedules); the global registry stays whole. A name no handler has is an error."""
        check_disabled(self.job_types(), disabled)
        copy = HandlerRegistry()
        copy._specs = {t: s for t, s in self._specs.items() if t not in disabled}
        copy._payload_checks = {t: c for t, c in self._payload_checks.items() if t not in disabled}
        copy.missing_extras = dict(self.missing_extras)  # a worker still names the extra
        copy._schedules = {
            n: s for n, s in self._schedules.items() if s.job.job_type not in disabled
        }
        copy._disabled = frozenset(disabled)
        return copy

    def load_modules(self, module_names: list[str]) -> None:
        """Import users' modules; they register on import with `@jobqueue.task` or
        `@registry.register(...)`."""
        for name in module_names:
            if name in OWN_PACKAGES:
                raise ImportError(
                    f"JOBQUEUE_HANDLER_MODULES names {name!r}, which is job-queue's own "
                    "package, not yours: rename your module (tasks.py, say)"
                )
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise ImportError(
                    f"JOBQUEUE_HANDLER_MODULES names {name!r}, which cannot be imported: {exc}"
                ) from exc


# job-queue's own top-level packages: a user module cannot be loaded under these names
OWN_PACKAGES = ("jobqueue", "worker", "controller")


class UnknownDisabledHandler(ValueError):
    """JOBQUEUE_DISABLED_HANDLERS names a job type no handler registers (a typo would
    otherwise leave the handler running)."""


def check_disabled(known: list[str], disabled: list[str]) -> None:
    unknown = [name for name in disabled if name not in known]
    if unknown:
        raise UnknownDisabledHandler(
            f"JOBQUEUE_DISABLED_HANDLERS names {', '.join(map(repr, unknown))}, which no handler "
            f"registers (known: {', '.join(known) or 'none'})"
        )


registry = HandlerRegistry()
