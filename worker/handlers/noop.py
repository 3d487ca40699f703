"""`noop`: does nothing and returns {}; benchmarks and tests use it to measure the queue alone."""

from __future__ import annotations

from typing import Any

from worker.handlers.base import JobContext, registry


@registry.register("noop")
async def noop(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return {}
