"""Typed tasks that the integration tests' worker processes load (JOBQUEUE_HANDLER_MODULES),
declared as users declare them: from `jobqueue` only."""

from __future__ import annotations

import dataclasses
import threading
import time

from pydantic import BaseModel, Field

import jobqueue


class Resize(BaseModel):
    path: str
    width: int = Field(gt=0, le=4096)


@dataclasses.dataclass
class Shout:
    text: str


@jobqueue.task(max_tries=2)
async def resize(payload: Resize, ctx: jobqueue.JobContext) -> dict[str, object]:
    ctx.progress(1.0, "resized")
    return {"path": payload.path, "width": payload.width, "queue": ctx.queue_name}


@jobqueue.task
def shout(payload: Shout, ctx: jobqueue.JobContext) -> Shout:
    """A plain def: the worker runs it in its thread pool, off the event loop, so it may
    block; what it logs through ctx.logger is kept with the job."""
    time.sleep(0.2)
    ctx.logger.info("shouting in %s", threading.current_thread().name.rsplit("_", 1)[0])
    return Shout(payload.text.upper())


@jobqueue.task(max_tries=1)
def mumble(payload: Shout) -> None:
    """A plain def that fails without logging a line: its traceback is kept all the same."""
    raise LookupError(f"cannot mumble {payload.text!r}")
