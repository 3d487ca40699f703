"""Prometheus metrics of the controller, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_PER_DEPLOYMENT = ["namespace", "deployment"]


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.desired = Gauge(
            "jobqueue_controller_desired_replicas",
            "Replicas the policy asks for",
            _PER_DEPLOYMENT,
            registry=r,
        )
        self.actual = Gauge(
            "jobqueue_controller_actual_replicas",
            "Replicas the Deployment has",
            _PER_DEPLOYMENT,
            registry=r,
        )
        self.ready = Gauge(
            "jobqueue_controller_ready_jobs",
            "Ready jobs over the Deployment's queues (capped)",
            _PER_DEPLOYMENT,
            registry=r,
        )
        self.running = Gauge(
            "jobqueue_controller_running_jobs",
            "Running jobs over the Deployment's queues (capped)",
            _PER_DEPLOYMENT,
            registry=r,
        )
        self.oldest = Gauge(
            "jobqueue_controller_oldest_ready_job_seconds",
            "Age of the oldest ready job",
            _PER_DEPLOYMENT,
            registry=r,
        )
        self.scale_events = Counter(
            "jobqueue_controller_scale_events_total",
            "Replica changes written, by direction",
            [*_PER_DEPLOYMENT, "direction"],
            registry=r,
        )
        self.errors = Counter(
            "jobqueue_controller_errors_total", "Errors by kind", ["kind"], registry=r
        )
        self.leader = Gauge(
            "jobqueue_controller_leader", "1 while this replica holds the Lease", registry=r
        )
        self.managed = Gauge(
            "jobqueue_controller_deployments", "Labelled Deployments seen", registry=r
        )
        self.probe_seconds = Histogram(
            "jobqueue_controller_depth_probe_seconds",
            "Time one depth probe takes",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
            registry=r,
        )

    def forget(self, namespace: str, name: str) -> None:
        """Drop a Deployment's series once it is gone or no longer labelled."""
        for gauge in (self.desired, self.actual, self.ready, self.running, self.oldest):
            try:
                gauge.remove(namespace, name)
            except KeyError:
                pass
        for direction in ("up", "down"):
            try:
                self.scale_events.remove(namespace, name, direction)
            except KeyError:
                pass
