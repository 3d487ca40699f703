"""`jobqueue controller`: kopf in standalone mode (no peering, no CRDs), plus the Lease election,
the one control loop, and /healthz + /metrics on the controller port.

kopf only watches: one event handler feeds the control loop. With no change, timer, daemon or
deletion handlers registered, kopf adds no finalizer and no last-handled-configuration
annotation to user objects. The watch uses a server-side label selector, so kopf holds only the
labelled Deployments in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import kopf
from kubernetes_asyncio.config import ConfigException

from controller.annotations import AUTOSCALE_LABEL, LABEL_SELECTOR
from controller.capacity_guard import CapacityGuard
from controller.decisions import DecisionLog
from controller.depth import DepthSource
from controller.kubeclient import api_client, connection_info, load_configuration
from controller.leader import LeaderElector
from controller.loop import ControlLoop
from controller.metrics import ControllerMetrics
from controller.scaler import Scaler
from worker.runtime.http import HealthServer
from worker.settings import ControllerSettings

log = logging.getLogger(__name__)

_STARTUP_GRACE = 60.0


def watched_namespaces(settings: ControllerSettings) -> list[str]:
    """Namespaced by default: the configured namespaces, else the controller's own."""
    if settings.controller_cluster_wide:
        return []
    return settings.controller_namespaces or [settings.pod_namespace or "default"]


def lease_namespace(settings: ControllerSettings) -> str:
    if settings.controller_lease_namespace:
        return settings.controller_lease_namespace
    if settings.pod_namespace:
        return settings.pod_namespace
    return (settings.controller_namespaces or ["default"])[0]


def kopf_settings() -> kopf.OperatorSettings:
    operator = kopf.OperatorSettings()
    operator.peering.standalone = True  # peering needs CRDs; the Lease elects instead
    operator.scanning.disabled = True  # no namespace or CRD watching: fewer permissions
    operator.posting.enabled = False  # our Events are our own, with reasons users can filter on
    operator.watching.label_selectors["apps", "deployments"] = LABEL_SELECTOR
    operator.watching.server_timeout = 300
    operator.watching.client_timeout = 330
    operator.watching.connect_timeout = 10
    return operator


def build_registry(loop: ControlLoop, configuration: Any) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        return await connection_info(configuration)

    # labels= repeats the server-side selector, so a mis-set selector can never widen the scope
    @kopf.on.event("apps", "v1", "deployments", labels={AUTOSCALE_LABEL: "true"}, registry=registry)
    async def deployment_event(event: kopf.RawEvent, **_: Any) -> None:
        loop.observe(event.get("type"), event["object"])

    return registry


async def serve(settings: ControllerSettings, dsn: str, stop: asyncio.Event | None = None) -> int:
    started = time.monotonic()
    try:
        configuration = await load_configuration(settings)
    except (ConfigException, OSError) as exc:
        log.error("no Kubernetes credentials: %s (set KUBECONFIG, or run in a pod)", exc)
        return 2
    # every part that holds a resource is closed on the way out, whatever fails first
    async with contextlib.AsyncExitStack() as cleanup:
        api = api_client(configuration)
        cleanup.push_async_callback(api.close)
        metrics = ControllerMetrics()
        # the three refer to each other through late-bound lambdas
        depth = DepthSource(
            dsn,
            timeout=settings.controller_db_timeout,
            on_new_job=lambda queue: loop.on_new_job(queue),
            on_worker_started=lambda name: loop.on_worker_started(name),
            connect_kwargs=settings.timeouts.connect_kwargs(
                {"application_name": "jobqueue-controller"}
            ),
        )
        loop = ControlLoop(
            depth=depth,
            scaler=Scaler(api, settings.controller_identity),
            metrics=metrics,
            interval=settings.controller_interval,
            status_interval=settings.controller_status_interval,
            is_leader=lambda: leader.is_leader,
            db_timeout=settings.controller_db_timeout,
            capacity=CapacityGuard(
                depth,
                timeout=settings.controller_db_timeout,
                window_seconds=settings.controller_rate_window,
            ),
            decisions=DecisionLog(
                depth,
                keep_seconds=settings.controller_decisions_keep,
                timeout=settings.controller_db_timeout,
                on_error=lambda: metrics.errors.labels("decisions").inc(),
            ),
        )
        leader = LeaderElector(
            api,
            namespace=lease_namespace(settings),
            name=settings.controller_lease_name,
            identity=settings.controller_identity,
            lease_seconds=settings.controller_lease_seconds,
            on_change=loop.on_leadership,
        )

        def health() -> dict[str, Any]:
            now = time.monotonic()
            stale_after = max(30.0, 10 * settings.controller_interval)
            ticking = loop.last_tick is not None and now - loop.last_tick < stale_after
            return {
                "healthy": ticking or (loop.last_tick is None and now - started < _STARTUP_GRACE),
                "leader": leader.is_leader,
                "deployments": len(loop.deployments),
            }

        server = HealthServer(
            "0.0.0.0", settings.controller_port, metrics.registry, health, ready=health
        )
        await server.start()
        cleanup.push_async_callback(server.close)
        cleanup.push_async_callback(depth.close)
        cleanup.push_async_callback(leader.release)  # runs first, once the tasks are done
        namespaces = watched_namespaces(settings)
        log.info(
            "controller starting",
            extra={
                "identity": settings.controller_identity,
                "namespaces": ",".join(namespaces) or "*",
                "lease": f"{leader.namespace}/{leader.name}",
                "port": server.port,
            },
        )
        stopping = asyncio.create_task((stop or asyncio.Event()).wait(), name="stop request")
        tasks = [
            asyncio.create_task(leader.run(), name="lease"),
            asyncio.create_task(loop.run(), name="control loop"),
        ]
        # kopf returns on SIGTERM or SIGINT; a dead part of ours, or a stop request, cancels it.
        # (kopf's own stop_flag would leave a waiter behind that it then waits 5 s for at exit.)
        operator = asyncio.create_task(
            kopf.operator(
                registry=build_registry(loop, configuration),
                settings=kopf_settings(),
                standalone=True,
                clusterwide=not namespaces,
                namespaces=namespaces,
            ),
            name="kopf",
        )
        for task in (*tasks, stopping):
            task.add_done_callback(lambda _: operator.cancel())
        try:
            await asyncio.gather(operator, return_exceptions=True)
        finally:
            crashed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
            for task in (*tasks, stopping, operator):
                task.cancel()
            await asyncio.gather(*tasks, stopping, operator, return_exceptions=True)
    for task in crashed:
        log.error("controller part failed", exc_info=task.exception())
    log.info("controller stopped")
    return 1 if crashed else 0


def _quiet_kopf(debug: bool) -> None:
    # kopf narrates every watch event at DEBUG; keep its INFO and up unless debugging
    logging.getLogger("kopf").setLevel(logging.DEBUG if debug else logging.INFO)
    # ... and says "Handler succeeded" at INFO for every watch event of every Deployment
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def run_controller(settings: ControllerSettings, dsn: str) -> int:
    """The process's logging is set up by its caller (JSON unless JOBQUEUE_LOG_FORMAT says
    otherwise: the controller's logs feed cluster tooling); kopf's own loggers are quieted here."""
    _quiet_kopf(settings.debug)
    try:
        return asyncio.run(serve(settings, dsn))
    except KeyboardInterrupt:
        return 0
