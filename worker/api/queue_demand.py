"""The queues' demand on the API's /metrics, read when Prometheus scrapes: the same numbers the
controller scales on (ready jobs, none while the queue is paused, plus running jobs), per
queue, for teams that scale with KEDA's prometheus scaler or watch a dashboard.

Zero-filled: every queue the database knows of has a series, and one that this process has
reported stays at 0 once it is empty, so a drained queue never shows its last backlog (a
scaler reading a stale series would hold replicas up). A read that fails reports no series
at all for that scrape: "unknown" must not look like "empty".
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

from worker.api.errors import DATABASE_ERRORS
from worker.db import demand as demand_sql

if TYPE_CHECKING:
    from worker.api.state import ApiState

log = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 2.0


class QueueDemandGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.demand = Gauge(
            "jobqueue_queue_demand_jobs",
            "Ready (none while paused) plus running jobs per queue: the demand the controller "
            "scales on; divide by jobs per replica for replicas",
            ["queue"],
            registry=registry,
        )
        self.ready = Gauge(
            "jobqueue_queue_ready_jobs",
            "Pending jobs that are due, per queue (0 while the queue is paused)",
            ["queue"],
            registry=registry,
        )
        self.running = Gauge(
            "jobqueue_queue_running_jobs", "Running jobs per queue", ["queue"], registry=registry
        )
        self._seen: set[str] = set()

    async def refresh(self, state: ApiState) -> None:
        try:
            async with state.connection(acquire_timeout=READ_TIMEOUT_SECONDS) as conn:
                rows = await demand_sql.select_queue_demand(conn, READ_TIMEOUT_SECONDS)
        except DATABASE_ERRORS as exc:
            log.warning("queue demand unknown for this scrape: %s", exc)
            for gauge in (self.demand, self.ready, self.running):
                gauge.clear()
            return
        found = {row["queue_name"]: (row["ready"], row["running"]) for row in rows}
        for queue in self._seen - found.keys():
            found[queue] = (0, 0)
        self._seen |= found.keys()
        for queue, (ready, running) in found.items():
            self.ready.labels(queue).set(ready)
            self.running.labels(queue).set(running)
            self.demand.labels(queue).set(ready + running)
