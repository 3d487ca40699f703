"""L2: Snooze refuses a delay it could not honour, and the runner turns a raised or a returned
Snooze into the same outcome (the job goes back without using a try)."""

from __future__ import annotations

import math

import pytest

from worker.db.claims import ClaimedJob
from worker.handlers import Snooze
from worker.handlers.base import HandlerRegistry, JobContext
from worker.runtime.executor import JobRunner
from worker.settings import WorkerSettings


@pytest.mark.parametrize("seconds", [-1, math.inf, math.nan, "5"])
def test_bad_delays_are_refused(seconds: object) -> None:
    with pytest.raises(ValueError, match="Snooze"):
        Snooze(seconds)  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["raise", "return"])
async def test_raised_or_returned_it_is_a_snooze_outcome(how: str) -> None:
    registry = HandlerRegistry()

    @registry.register("later")
    async def later(payload: dict[str, object], ctx: JobContext) -> object:
        if how == "raise":
            raise Snooze(12)
        return Snooze(12)

    runner = JobRunner(WorkerSettings(handler_modules=[]), registry, "w")
    outcome = await runner.run(ClaimedJob(1, "later", {}, "default", 1, 3, None))
    assert not outcome.ok and outcome.snooze_seconds == 12.0 and outcome.error == ""
