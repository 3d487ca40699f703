"""Typed tasks that the integration tests' worker processes load (JOBQUEUE_HANDLER_MODULES),
declared as users declare them: from `jobqueue` only."""

from __future__ import annotations

import dataclasses

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
def shout(payload: Shout) -> Shout:
    """A plain def: the worker runs it in its thread pool."""
    return Shout(payload.text.upper())
