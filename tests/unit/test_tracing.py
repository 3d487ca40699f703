"""The tracing switch: off, the hooks are no-ops that hand back what they were given; a bad
setting or a missing extra is an error that names the setting."""

from __future__ import annotations

import sys

import pytest

from worker import tracing
from worker.settings import Settings, TracingSettings


async def _run(job: int) -> int:
    return job


def test_off_the_hooks_are_no_ops() -> None:
    tracing.setup(TracingSettings(otel=False), "test")
    assert tracing.enabled is False
    assert tracing.traced_run(_run) is _run  # the handler is called directly
    assert tracing.app_telemetry() is None  # FastAPI's own defaults
    span = tracing.enqueue_span("default")
    assert span is tracing.enqueue_batch_span([]) and span.traceparent is None
    with span as entered:
        entered.enqueued(1, True)
    assert tracing.settling([(1, 1, "null")], "complete") is tracing.settling([], "fail")
    tracing.claimed([], 0.0)


def test_on_without_the_extra_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "worker.tracing.spans", raising=False)
    monkeypatch.delattr(tracing, "spans", raising=False)  # `from worker.tracing import spans`
    for name in [m for m in sys.modules if m.startswith("opentelemetry.sdk")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)
    with pytest.raises(tracing.TracingUnavailable, match=r"JOBQUEUE_OTEL=true.*otel"):
        tracing.setup(TracingSettings(otel=True), "test")
    assert tracing.enabled is False


def test_a_configure_target_that_does_not_load_names_the_setting() -> None:
    from worker.tracing import spans

    with pytest.raises(tracing.TracingUnavailable, match="JOBQUEUE_OTEL_CONFIGURE='nowhere:f'"):
        spans._call_configure("nowhere:f", "test")
    with pytest.raises(tracing.TracingUnavailable, match="'module:function'"):
        spans._call_configure("worker.settings", "test")  # no function named


def test_an_unknown_exporter_is_refused_only_when_tracing_is_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worker.tracing import spans

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")  # set for some other program
    settings = Settings().worker.tracing  # tracing off: no complaint
    assert settings.otel_traces_exporter == "zipkin"
    with pytest.raises(tracing.TracingUnavailable, match="OTEL_TRACES_EXPORTER='zipkin'"):
        spans._provider(settings, "jobqueue-worker", None)
    exporters = spans._exporters("console, none,otlp")
    assert [type(e).__name__ for e in exporters] == ["ConsoleSpanExporter", "OTLPSpanExporter"]
    for exporter in exporters:
        exporter.shutdown()


def test_pending_state_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.tracing import spans

    monkeypatch.setattr(spans, "MAX_PENDING", 2)
    table: dict[int, str] = {}
    for job_id in (1, 2, 3):
        spans._keep(table, job_id, str(job_id))
    assert table == {2: "2", 3: "3"}  # the oldest went


def test_the_provider_names_the_service_and_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.tracing import spans

    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = spans._provider(
        TracingSettings(otel_traces_exporter="none"), "jobqueue-worker", "w-1"
    )
    assert provider.resource.attributes["service.name"] == "jobqueue-worker"
    assert provider.resource.attributes["service.instance.id"] == "w-1"
    provider.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-worker")  # the standard variable wins
    settings = TracingSettings(otel_traces_exporter="console")
    provider = spans._provider(settings, "jobqueue-worker", None)
    assert provider.resource.attributes["service.name"] == "billing-worker"
    assert provider.resource.attributes["service.instance.id"] != "w-1"  # the SDK's own
    provider.shutdown()


@pytest.mark.parametrize("name", ["otlp", "console"])
def test_each_exporter_name_makes_its_exporter(name: str) -> None:
    from worker.tracing import spans

    exporter = spans._exporter(name)
    assert exporter is not None and name in type(exporter).__name__.lower()
    exporter.shutdown()
    assert spans._exporter("none") is None
