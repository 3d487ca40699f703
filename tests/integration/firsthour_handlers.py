"""Handlers a newcomer would write, loaded by real `jobqueue worker` and `jobqueue api`
processes through JOBQUEUE_HANDLER_MODULES in the first-hour tests: plain `def` functions
beside `async def` ones, failures with a traceback, and lines logged through ctx.logger."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from worker.handlers.base import JobContext, registry


def _append(path: str, line: str) -> None:
    with Path(path).open("a") as out:
        out.write(line + "\n")


@registry.register("fh_sync")
def sync_handler(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """A plain function, as a newcomer writes one: its side effect is one line per run."""
    _append(payload["marker"], f"{ctx.job_id} {ctx.attempt}")
    time.sleep(float(payload.get("seconds", 0)))  # blocking: it must not stall the worker
    return {"thread": threading.current_thread().name, "attempt": ctx.attempt}


@registry.register("fh_sync_slow")
def sync_slow(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Runs until it is told to stop (ctx.cancelled), then says so in its marker file."""
    deadline = time.monotonic() + float(payload.get("seconds", 30))
    while time.monotonic() < deadline:
        if ctx.cancelled:
            _append(payload["marker"], f"stopped {ctx.job_id}")
            return {"stopped": True}
        time.sleep(0.02)
    _append(payload["marker"], f"ran out {ctx.job_id}")
    return {"stopped": False}


def _lookup(payload: dict[str, Any]) -> Any:
    return payload["missing_key"]  # the line a traceback must point at


@registry.register("fh_fail")
async def failing(payload: dict[str, Any], ctx: JobContext) -> None:
    """Logs what it is doing, then fails on a missing key: every attempt."""
    ctx.logger.info("looking up the key, attempt %d", ctx.attempt)
    await asyncio.sleep(0)
    _lookup(payload)


@registry.register("fh_sync_fail")
def sync_failing(payload: dict[str, Any], ctx: JobContext) -> None:
    ctx.logger.warning("about to fail in a thread")
    _lookup(payload)


@registry.register("fh_chatty")
async def chatty(payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Logs `lines` lines of `width` characters: past the per-job cap, the rest is dropped."""
    for n in range(int(payload.get("lines", 3))):
        ctx.logger.info("line %d %s", n, "x" * int(payload.get("width", 10)))
    return {"logged": int(payload.get("lines", 3))}
