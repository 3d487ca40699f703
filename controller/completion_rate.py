"""The measured completion rate per replica: a moving window over the jobs that finished.

Pure: the controller feeds it what each tick's read of newly finished jobs found, and asks it
for the rate one replica sustains. The rate is taken from the jobs' own run times (slots over
the mean run time), not from completions per replica-second, so replicas that were idle, still
starting, or blocked by a limit do not pull it down and inflate the next scale-up.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SPAN = 120.0  # seconds of finished jobs the rate is measured over
_SHORTEST_RUN = 0.001  # a run time floor, so a window of no-op jobs does not divide by zero


@dataclass(frozen=True)
class Finished:
    """One read of the jobs that finished since the previous read."""

    at: float  # the controller's clock when read
    jobs: int
    run_seconds: float  # summed over those jobs (finished_at - started_at)


@dataclass(frozen=True)
class CompletionWindow:
    span: float = DEFAULT_SPAN
    samples: tuple[Finished, ...] = ()

    def add(self, sample: Finished) -> CompletionWindow:
        """This window with `sample` added and every sample older than the span dropped."""
        kept = tuple(s for s in self.samples if s.at > sample.at - self.span)
        return CompletionWindow(self.span, (*kept, sample) if sample.jobs else kept)

    @property
    def jobs(self) -> int:
        return sum(s.jobs for s in self.samples)

    def mean_run_seconds(self) -> float | None:
        """The mean run time of the jobs in the window; None when none finished in it."""
        jobs = self.jobs
        if jobs == 0:
            return None
        return max(_SHORTEST_RUN, sum(s.run_seconds for s in self.samples) / jobs)

    def rate_per_replica(self, slots_per_replica: int) -> float | None:
        """Jobs per second one replica completes with all its slots busy; None unmeasured."""
        mean = self.mean_run_seconds()
        return None if mean is None else slots_per_replica / mean
