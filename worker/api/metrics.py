"""Prometheus metrics of the API: requests, latency and enqueued jobs.

Each app has its own registry, so tests can build many apps in one process.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.api.queue_demand import QueueDemandGauges
from worker.db.jobs import Enqueued, Job

UNMATCHED_ROUTE = "<unmatched>"  # one label for all unknown paths keeps cardinality bounded
# Labels clients choose are bounded too: queue names past the first `max_queues` share one
# label, and methods outside HTTP's usual ones another.
OTHER_QUEUES = "_other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"


class ApiMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_queues: int = 100) -> None:
        self.max_queues = max_queues
        self._queues: set[str] = set()
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "jobqueue_api_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "jobqueue_api_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.enqueued = Counter(
            "jobqueue_api_jobs_enqueued_total",
            "Jobs created through the API, by queue.",
            ["queue_name"],
            registry=self.registry,
        )
        # labels() takes a lock and builds a key on every call: keep the children
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._enqueue_children: dict[tuple[str, bool], Counter] = {}
        self.queue_demand = QueueDemandGauges(self.registry)  # refreshed when scraped
        self.duplicates = Counter(
            "jobqueue_api_jobs_duplicate_total",
            "Enqueue requests answered with an existing job (idempotency key seen before).",
            ["queue_name"],
            registry=self.registry,
        )

    def queue_label(self, queue_name: str) -> str:
        if queue_name in self._queues:
            return queue_name
        if len(self._queues) < self.max_queues:
            self._queues.add(queue_name)
            return queue_name
        return OTHER_QUEUES

    def count_enqueued(self, queue_name: str, created: bool, n: int = 1) -> None:
        queue_name = self.queue_label(queue_name)
        child = self._enqueue_children.get((queue_name, created))
        if child is None:
            child = (self.enqueued if created else self.duplicates).labels(queue_name)
            self._enqueue_children[(queue_name, created)] = child
        child.inc(n)

    def count_enqueued_many(self, pairs: Iterable[tuple[Job | Enqueued, bool]]) -> None:
        tally = collections.Counter((job.queue_name, created) for job, created in pairs)
        for (queue_name, created), n in tally.items():
            self.count_enqueued(queue_name, created, n)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = OTHER_METHOD
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI (BaseHTTPMiddleware costs a task per request): times every HTTP request and
    labels it with the route template the router matched."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(scope.get("method", ""), template, status, elapsed)
