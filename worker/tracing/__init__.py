"""The tracing switch, and the hooks the API and the worker call on their hot paths.

Off (the default, JOBQUEUE_OTEL unset), every hook is a no-op that imports nothing from
OpenTelemetry and allocates nothing per job: the enqueue path enters one shared null span, the
claim and acknowledgement paths make one empty call per batch, and the handler is called
directly (`traced_run` hands back the function it was given). `setup` with JOBQUEUE_OTEL=true
imports `worker.tracing.spans` (which needs the `otel` extra) and rebinds these names to it, so
the callers, which look them up through this module at call time, reach the real spans.

Callers that are built before `setup` runs keep the no-op they took; `setup` is called at the
top of `create_app` and `WorkerProcess.start`, before anything takes a hook.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig

    from worker.settings import TracingSettings

Job = TypeVar("Job")
Result = TypeVar("Result")

enabled = False


class EnqueueSpan:
    """What the enqueue path sees of its span: the traceparent to store on the rows (None when
    tracing is off), and where to report the id of the job a single enqueue made or found."""

    traceparent: str | None = None

    def __enter__(self) -> EnqueueSpan:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def enqueued(self, job_id: int, created: bool) -> None:
        return None


_NO_SPAN = EnqueueSpan()
_NO_SETTLING: AbstractContextManager[None] = nullcontext()  # reusable: it holds no state


# --- the hooks (no-ops until setup rebinds them)
def app_telemetry() -> TelemetryConfig | None:
    """FastAPI's `telemetry=` for the API's app: None keeps FastAPI's defaults, under which
    its native spans stay off while no tracer provider is installed."""
    return None


def enqueue_span(queue_name: str) -> EnqueueSpan:
    """Around one enqueue: the producer span whose context the job row keeps."""
    return _NO_SPAN


def enqueue_batch_span(jobs: Sequence[Any]) -> EnqueueSpan:
    """Around a batch enqueue (items with a queue_name): one producer span, the creation
    context of every job in it."""
    return _NO_SPAN


def claimed(jobs: Sequence[Any], started: float) -> None:
    """After a claim statement that began at `started` (time.perf_counter())."""


def traced_run(
    run: Callable[[Job], Awaitable[Result]],
) -> Callable[[Job], Awaitable[Result]]:
    """The job runner's `run`, wrapped in the handler's process span when tracing is on."""
    return run


def settling(items: Sequence[Sequence[Any]], operation: str) -> AbstractContextManager[None]:
    """Around a batch acknowledgement of `items`, acks.py's tuples: the job id first and, in a
    failure, the retry delay fourth (None: failed for good)."""
    return _NO_SETTLING


# --- the switch
class TracingUnavailable(RuntimeError):
    """Tracing was asked for and cannot start: the otel extra is missing, or
    JOBQUEUE_OTEL_CONFIGURE does not load. The message names the setting."""


def setup(settings: TracingSettings, service_name: str, instance_id: str | None = None) -> None:
    """Turn tracing on for this process when JOBQUEUE_OTEL is true; a no-op otherwise, and
    on a second call. `instance_id` (a worker's UUID) becomes service.instance.id."""
    global enabled
    if not settings.otel or enabled:
        return
    try:
        from worker.tracing import spans
    except ImportError as exc:
        raise TracingUnavailable(
            f"JOBQUEUE_OTEL=true needs the otel extra (pip install 'job-queue[otel]'): {exc}"
        ) from None
    spans.install(settings, service_name, instance_id)
    module = globals()
    for name in spans.HOOKS:
        module[name] = getattr(spans, name)
    enabled = True
