"""`@registry.periodic(...)`: a handler that also runs on a schedule, declared beside its code.

Every worker process writes the schedules its registry declares at start (source 'code');
the scheduler service then fires them like any other. Pausing one through the API or CLI
sticks across restarts; a schedule made through the API under the same name wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.db.schedules import JobSpec, ScheduleDef
from worker.ticks import new_timing


@dataclass(frozen=True)
class PeriodicSpec:
    """What the decorator was given; `definition(job_type)` checks it and builds the schedule."""

    name: str | None = None
    cron: str | None = None
    every_seconds: float | None = None
    timezone: str = "UTC"
    payload: dict[str, Any] = field(default_factory=dict)
    queue_name: str = "default"
    priority: int = 0
    max_tries: int = 3
    tick_field: str | None = None
    catch_up: str = "one"

    def definition(self, job_type: str) -> ScheduleDef:
        """Raises ValueError (InvalidSchedule names the field) at import time, so a bad
        declaration stops the worker with a message instead of never firing."""
        return ScheduleDef(
            name=self.name or job_type,
            timing=new_timing(self.cron, self.every_seconds, self.timezone),
            job=JobSpec(
                job_type=job_type,
                payload=dict(self.payload),
                queue_name=self.queue_name,
                priority=self.priority,
                max_tries=self.max_tries,
                tick_field=self.tick_field,
            ),
            catch_up=self.catch_up,
        )
