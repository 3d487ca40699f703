"""Handlers for the tracing tests, loaded by `jobqueue worker` through JOBQUEUE_HANDLER_MODULES:
one makes a span of its own (it must nest under the worker's process span), one always fails."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from worker.handlers.base import JobContext, registry


@registry.register("test_traced")
async def traced(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    with trace.get_tracer("tests").start_as_current_span("handler work"):
        return {"job": ctx.job_id}


@registry.register("test_always_fails")
async def always_fails(payload: dict[str, Any], ctx: JobContext) -> None:
    raise RuntimeError(f"attempt {ctx.attempt} failed on purpose")
