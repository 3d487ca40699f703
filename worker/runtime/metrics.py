"""Prometheus metrics of one worker process, in a registry of its own.

Per-job figures are counted in plain ints and turned into metric families only when scraped:
at tens of thousands of jobs a second, prometheus_client's per-call locking would cost more
than running a no-op job.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
_CLAIM_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


class _TypeStats:
    __slots__ = ("buckets", "completed", "failed", "retried", "seconds")

    def __init__(self) -> None:
        self.completed = 0
        self.retried = 0  # failed attempts that will be tried again
        self.failed = 0  # jobs that failed for good
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)  # the last one is +Inf
        self.seconds = 0.0


class _JobCollector(Collector):
    def __init__(self, stats: dict[str, _TypeStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        completed = CounterMetricFamily(
            "jobqueue_jobs_completed", "Jobs completed, by job type", labels=["job_type"]
        )
        failed = CounterMetricFamily(
            "jobqueue_jobs_failed",
            "Failed attempts by job type; final=true when the job failed for good",
            labels=["job_type", "final"],
        )
        duration = HistogramMetricFamily(
            "jobqueue_job_duration_seconds", "Handler run time, by job type", labels=["job_type"]
        )
        for job_type, stats in sorted(self._stats.items()):
            completed.add_metric([job_type], stats.completed)
            failed.add_metric([job_type, "false"], stats.retried)
            failed.add_metric([job_type, "true"], stats.failed)
            cumulative, running = [], 0
            for bound, count in zip((*DURATION_BUCKETS, float("inf")), stats.buckets, strict=True):
                running += count
                cumulative.append((str(float(bound)) if bound != float("inf") else "+Inf", running))
            duration.add_metric([job_type], cumulative, stats.seconds)
        yield from (completed, failed, duration)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._by_type: dict[str, _TypeStats] = {}
        self.registry.register(_JobCollector(self._by_type))
        self.in_flight = Gauge(
            "jobqueue_jobs_in_flight", "Jobs whose handler is running now", registry=self.registry
        )
        self.claim_latency = Histogram(
            "jobqueue_claim_latency_seconds",
            "Time one claim statement takes",
            buckets=_CLAIM_BUCKETS,
            registry=self.registry,
        )
        self.claimed = Counter("jobqueue_jobs_claimed", "Jobs claimed", registry=self.registry)
        self.startup = Gauge(
            "jobqueue_worker_startup_seconds",
            "When each phase of this process's start was reached, in seconds after the "
            "process started: imported, connected, registered, firstClaim",
            ["phase"],
            registry=self.registry,
        )
        self.stale_acks = Counter(
            "jobqueue_stale_acks",
            "Acknowledgements that changed nothing: the job was no longer this worker's",
            registry=self.registry,
        )

    def track_in_flight(self, count: Callable[[], int]) -> None:
        self.in_flight.set_function(lambda: float(count()))

    def job_finished(self, job_type: str, seconds: float, *, ok: bool, final: bool) -> None:
        stats = self._by_type.get(job_type)
        if stats is None:
            stats = self._by_type[job_type] = _TypeStats()
        stats.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        stats.seconds += seconds
        if ok:
            stats.completed += 1
        elif final:
            stats.failed += 1
        else:
            stats.retried += 1
