"""The capacity benchmarks' handler: `bench_sleep` sleeps payload["seconds"] and returns, so a
run measures scaling, not work. It opens no connection of its own, so every connection a
benchmark counts belongs to a worker or to a scaler."""

from __future__ import annotations

import asyncio
from typing import Any

from worker.handlers.base import JobContext, registry


@registry.register("bench_sleep")
async def bench_sleep(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    await asyncio.sleep(float(payload.get("seconds", 0.05)))
    return {}
