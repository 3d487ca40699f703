"""Prometheus metrics of the controller, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from worker.runtime.startup import PHASES as WORKER_PHASES

_PER_DEPLOYMENT = ["namespace", "deployment"]
# a scale-up from zero, phase by phase (controller.cold_start)
# the controller's own, the pod's, then the worker's (as it records them in workers.startup)
COLD_START_PHASES = ("decision", "scaled", "podCreated", "containerStarted", *WORKER_PHASES)


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
        self.ticks = Counter(
            "jobqueue_controller_ticks_total", "Passes of the control loop as leader", registry=r
        )
        # controller.cold_start: a scale-up from zero, phase by phase, from the burst
        self.cold_start = Histogram(
            "jobqueue_controller_cold_start_seconds",
            "Seconds from a burst (its oldest ready job) to each phase of a scale-up from zero: "
            + ", ".join(COLD_START_PHASES),
            ["phase"],
            buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60),
            registry=r,
        )
        self.last_cold_start = Gauge(
            "jobqueue_controller_last_cold_start_seconds",
            "The Deployment's last scale-up from zero: seconds from the burst to each phase",
            [*_PER_DEPLOYMENT, "phase"],
            registry=r,
        )
        # controller.pressure_guard: the database's health, read once per tick
        self.oldest_transaction = Gauge(
            "jobqueue_controller_db_oldest_transaction_seconds",
            "Age of the oldest transaction holding back the database's xmin horizon",
            registry=r,
        )
        self.connection_headroom = Gauge(
            "jobqueue_controller_db_connection_headroom",
            "Connections a new client can still open on the database",
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
        for phase in COLD_START_PHASES:
            try:
                self.last_cold_start.remove(namespace, name, phase)
            except KeyError:
                pass
