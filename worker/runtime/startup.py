"""A worker process's start, phase by phase: the process started, its imports done, the
database connected, the worker registered, and the first claim made. Each as the wall-clock
moment (seconds since the epoch), so the controller and the benchmarks can put it on the
timeline of a burst; the log line and the metric give them as seconds since the process
started.

The process's own start comes from the kernel (/proc/self/stat, in clock ticks since boot),
so it counts the interpreter's start and the imports that happen before any of our code runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

PROCESS_STARTED = "processStarted"
PHASES = ("imported", "connected", "registered", "firstClaim")
# the CPU the process had used by its first claim: the start's work, whatever the node's load
CPU_SECONDS = "cpuSeconds"


def process_started_at() -> float | None:
    """When this process started, as seconds since the epoch; None where /proc cannot say."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        # the 22nd field of stat, counted after the command in parentheses (fields 1 and 2)
        ticks = int(fields[19])
        since_boot = ticks / os.sysconf("SC_CLK_TCK")
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.time() - max(0.0, age)


class StartupTimeline:
    def __init__(self, process_started: float | None = None) -> None:
        started = process_started if process_started is not None else process_started_at()
        self.moments: dict[str, float] = {PROCESS_STARTED: started or time.time()}

    def mark(self, phase: str, at: float | None = None) -> None:
        if phase not in self.moments:  # the first time counts
            self.moments[phase] = time.time() if at is None else at
            if phase == PHASES[-1]:
                self.moments[CPU_SECONDS] = time.process_time()

    def complete(self) -> bool:
        return all(phase in self.moments for phase in PHASES)

    def seconds(self) -> Iterator[tuple[str, float]]:
        """Each phase reached, as seconds since the process started."""
        origin = self.moments[PROCESS_STARTED]
        for phase in PHASES:
            if phase in self.moments:
                yield phase, self.moments[phase] - origin

    def describe(self) -> str:
        text = ", ".join(f"{phase} {seconds:.3f} s" for phase, seconds in self.seconds())
        if CPU_SECONDS in self.moments:
            text += f" ({self.moments[CPU_SECONDS]:.3f} s of CPU)"
        return text
