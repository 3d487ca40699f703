"""`Snooze(seconds)`: a handler raises or returns it to run the job again later without using up
a try, e.g. while a rate-limited API says "come back in a minute". JOBQUEUE_MAX_SNOOZES caps
how often one job may snooze; past it, the job fails for good, with an error saying so."""

from __future__ import annotations

import math


class Snooze(Exception):
    def __init__(self, seconds: float) -> None:
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"Snooze(seconds): must be a finite number >= 0, got {seconds!r}")
        super().__init__(f"snoozed for {seconds:g}s")
        self.seconds = float(seconds)
