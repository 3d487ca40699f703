"""The spans, when tracing is on (worker.tracing imports this module only then).

One job is one trace, following OpenTelemetry's messaging conventions:

    POST /api/v1/queue/jobs          SERVER    (FastAPI's native telemetry)
    └── send <queue>                 PRODUCER  the creation context, kept in jobs.traceparent
        ├── claim <queue>            CLIENT    receive: the claim statement that took the job
        └── process <queue>          CONSUMER  the handler; spans the handler makes nest here
            └── complete <queue>     CLIENT    settle: the acknowledgement (or fail, retry)

The claim and the acknowledgement are batch statements: each job of a batch gets its own span
over the same interval (messaging.batch.message_count tells the batch), so that every span of a
job is in that job's trace. A job without a traceparent (enqueued with tracing off, or by SQL)
starts a trace of its own at its claim.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from worker.settings import TracingSettings
from worker.tracing import EnqueueSpan, TracingUnavailable

Job = TypeVar("Job")
Result = TypeVar("Result")

# the names worker.tracing rebinds to this module's versions
HOOKS = (
    "app_telemetry",
    "enqueue_span",
    "enqueue_batch_span",
    "claimed",
    "traced_run",
    "settling",
)

SYSTEM = "jobqueue"
# probes answer every few seconds and would drown the requests that matter
PROBES = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})

_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer = trace.NoOpTracer()

# Per-job state between two stages, normally for milliseconds. A job that never reaches the
# next stage (given back at shutdown, cancelled, its ack abandoned) leaves an entry behind:
# past this many, the oldest go.
MAX_PENDING = 100_000
# job id -> its creation context, parsed once at the claim for the process span
_claimed: dict[int, Context] = {}
# job id -> (its process span, its queue): the parent of the acknowledgement's span
_processed: dict[int, tuple[SpanContext, str]] = {}


def _keep(table: dict[int, Any], job_id: int, value: Any) -> None:
    table[job_id] = value
    if len(table) > MAX_PENDING:
        del table[next(iter(table))]  # dicts keep insertion order: the oldest


# --- setup
def install(settings: TracingSettings, service_name: str, instance_id: str | None) -> None:
    global _tracer
    if settings.otel_configure:
        _call_configure(settings.otel_configure, service_name)
    else:
        trace.set_tracer_provider(_provider(settings, service_name, instance_id))
    _tracer = trace.get_tracer("jobqueue")


def _provider(
    settings: TracingSettings, service_name: str, instance_id: str | None
) -> TracerProvider:
    # what OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES say wins over our defaults
    from_environment = OTELResourceDetector().detect().attributes
    ours: dict[str, str] = {}
    if "service.name" not in from_environment:
        ours["service.name"] = service_name
    if instance_id is not None and "service.instance.id" not in from_environment:
        ours["service.instance.id"] = instance_id  # the id the workers table knows it by
    resource = Resource.create().merge(Resource(ours))
    provider = TracerProvider(resource=resource)
    for exporter in _exporters(settings.otel_traces_exporter):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporters(value: str) -> list[SpanExporter]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown or not names:
        raise TracingUnavailable(
            f"OTEL_TRACES_EXPORTER={value!r}: choose from {', '.join(EXPORTERS)} "
            "(a comma-separated list for several)"
        )
    return [exporter for name in names if (exporter := _exporter(name)) is not None]


EXPORTERS = ("otlp", "console", "none")


def _exporter(name: str) -> SpanExporter | None:
    if name == "none":  # propagation only: traceparents are still written
        return None
    if name == "console":
        return ConsoleSpanExporter()
    # reads OTEL_EXPORTER_OTLP_ENDPOINT and the rest of its standard variables itself
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _call_configure(target: str, service_name: str) -> None:
    module_name, _, function_name = target.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise TracingUnavailable(
            f"JOBQUEUE_OTEL_CONFIGURE={target!r}: cannot load it ({exc}); "
            "give an importable 'module:function'"
        ) from None
    function(service_name)


# --- the API
def app_telemetry() -> TelemetryConfig:
    # FastAPI's native telemetry makes the SERVER span (http.route, the incoming traceparent
    # header honoured), with no instrumentation package to install. Its operation spans
    # (dependencies, endpoint, serialization) would add four spans to every request.
    return TelemetryConfig(exclude=_is_probe, operation_spans=False)


def _is_probe(scope: Any) -> bool:
    return scope.get("path") in PROBES


class _Send(EnqueueSpan):
    def __init__(self, span: Span) -> None:
        self._span = span
        carrier: dict[str, str] = {}
        _propagator.inject(carrier, trace.set_span_in_context(span))
        self.traceparent = carrier.get("traceparent")

    def enqueued(self, job_id: int, created: bool) -> None:
        self._span.set_attribute("messaging.message.id", str(job_id))
        if not created:  # an idempotency key found an earlier job, which keeps its own trace
            self._span.set_attribute("jobqueue.job.existing", True)


@contextmanager
def _sending(name: str, attributes: dict[str, Any]) -> Iterator[EnqueueSpan]:
    with _tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes) as s:
        yield _Send(s)


def enqueue_span(queue_name: str) -> Any:
    return _sending(f"send {queue_name}", _messaging("send", "enqueue", queue_name))


def enqueue_batch_span(jobs: Sequence[Any]) -> Any:
    queues = {job.queue_name for job in jobs}
    queue = queues.pop() if len(queues) == 1 else None
    attributes = _messaging("send", "enqueue", queue)
    attributes["messaging.batch.message_count"] = len(jobs)
    return _sending(f"send {queue}" if queue else "send", attributes)


# --- the worker
def claimed(jobs: Sequence[Any], started: float) -> None:
    end = time.time_ns()
    start = end - int((time.perf_counter() - started) * 1e9)
    for job in jobs:
        attributes = _messaging("receive", "claim", job.queue_name, job.id)
        attributes["messaging.batch.message_count"] = len(jobs)
        creation = _creation_context(job.traceparent)
        _keep(_claimed, job.id, creation)
        span = _tracer.start_span(
            f"claim {job.queue_name}",
            context=creation,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        span.end(end_time=end)


def traced_run(run: Callable[[Job], Awaitable[Result]]) -> Callable[[Job], Awaitable[Result]]:
    async def traced(job: Any) -> Any:
        attributes = _messaging("process", "process", job.queue_name, job.id)
        attributes["jobqueue.job.type"] = job.job_type
        attributes["jobqueue.job.attempt"] = job.attempts
        creation = _claimed.pop(job.id, None)
        span = _tracer.start_span(
            f"process {job.queue_name}",
            context=creation if creation is not None else _creation_context(job.traceparent),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        # current while the handler runs, so that the spans it makes are its children
        token = context.attach(trace.set_span_in_context(span))
        try:
            outcome: Any = await run(job)
        except BaseException as exc:  # a cancel, or the drain timeout's interruption
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("error.type", type(exc).__name__)
            span.end()
            # an interrupted job is still acknowledged (as a failed try): under this span
            _keep(_processed, job.id, (span.get_span_context(), job.queue_name))
            raise
        finally:
            context.detach(token)
        if not outcome.ok:
            span.set_status(Status(StatusCode.ERROR, outcome.error))
            span.set_attribute("error.type", "failed" if outcome.retry_delay is None else "retry")
        span.end()
        _keep(_processed, job.id, (span.get_span_context(), job.queue_name))
        return outcome

    return traced


class _Settle:
    def __init__(self, items: Sequence[Sequence[Any]], operation: str) -> None:
        self._items = items
        self._operation = operation

    def __enter__(self) -> None:
        self._start = time.time_ns()

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        end = time.time_ns()
        for item in self._items:
            job_id = item[0]
            parent, queue = _processed.pop(job_id, (None, None))
            operation = self._operation
            if operation == "fail" and item[3] is not None:  # a delay: back to pending
                operation = "retry"
            attributes = _messaging("settle", operation, queue, job_id)
            attributes["messaging.batch.message_count"] = len(self._items)
            span = _tracer.start_span(
                f"{operation} {queue}" if queue else operation,
                context=trace.set_span_in_context(trace.NonRecordingSpan(parent), Context())
                if parent is not None
                else Context(),
                kind=SpanKind.CLIENT,
                attributes=attributes,
                start_time=self._start,
            )
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, str(error)))
                span.set_attribute("error.type", type(error).__name__)
            span.end(end_time=end)


def settling(items: Sequence[Sequence[Any]], operation: str) -> Any:
    return _Settle(items, operation)


# --- shared
def _messaging(
    operation_type: str, operation: str, queue: str | None, job_id: int | None = None
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": operation_type,
        "messaging.operation.name": operation,
    }
    if queue is not None:
        attributes["messaging.destination.name"] = queue
    if job_id is not None:
        attributes["messaging.message.id"] = str(job_id)
    return attributes


def _creation_context(traceparent: str | None) -> Context:
    """The job's creation context; an empty one (a new trace) when it has none."""
    if not traceparent:
        return Context()
    return _propagator.extract({"traceparent": traceparent}, context=Context())
