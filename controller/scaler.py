"""Kubernetes plumbing: the /scale subresource, Events, the status annotation, deletion costs,
and the API's timestamp format."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client import ApiClient, AppsV1Api, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from controller.annotations import AUTOSCALE_LABEL, POD_DELETION_COST, STATUS

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
COMPONENT = "jobqueue-controller"
_CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class DeploymentRef:
    namespace: str
    name: str
    uid: str


class ScaleConflict(RuntimeError):
    """Someone else changed the replicas while we decided; the next tick decides again."""

    def __init__(self, message: str, current: int | None = None) -> None:
        super().__init__(message)
        self.current = current  # the replicas found, when known


def label_selector(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector object as the query string the API takes."""
    selector = selector or {}
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In":
            parts.append(f"{key} in ({','.join(values or [])})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({','.join(values or [])})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def api_time(moment: datetime | None = None, *, micro: bool = False) -> str:
    """`moment` (default: now) as the API's Time, or with `micro` its six-digit MicroTime."""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ"
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(fmt)


class Scaler:
    def __init__(self, api: ApiClient, identity: str) -> None:
        # Any: we send plain dict bodies and merge patches, which the generated stubs do not model
        self._apps: Any = AppsV1Api(api)
        self._core: Any = CoreV1Api(api)
        self._identity = identity

    async def scale(self, ref: DeploymentRef, decided_from: int, desired: int) -> int | None:
        """Set replicas through /scale. Returns the replicas replaced, or None when they
        already were `desired`. Raises ScaleConflict when they moved away from `decided_from`."""
        for _ in range(_CONFLICT_RETRIES):
            scale = await self._apps.read_namespaced_deployment_scale(ref.name, ref.namespace)
            current = scale.spec.replicas or 0
            if current == desired:
                return None
            if current != decided_from:
                raise ScaleConflict(f"replicas are {current}, decided from {decided_from}", current)
            body = {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {
                    "name": ref.name,
                    "namespace": ref.namespace,
                    "resourceVersion": scale.metadata.resource_version,
                },
                "spec": {"replicas": desired},
            }
            try:
                await self._apps.replace_namespaced_deployment_scale(ref.name, ref.namespace, body)
            except ApiException as exc:
                if exc.status == 409:  # the Deployment changed since the read: read again
                    continue
                raise
            return current
        raise ScaleConflict(f"{_CONFLICT_RETRIES} conflicts in a row")

    async def post_event(
        self, ref: DeploymentRef, reason: str, message: str, warning: bool = False
    ) -> None:
        now = api_time()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            },
            "reason": reason,
            "message": message[:1000],
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._identity[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._core.create_namespaced_event(ref.namespace, body)

    async def write_status(self, ref: DeploymentRef, status: Mapping[str, Any]) -> None:
        """Merge-patch the status annotation (it never re-triggers scaling: it is not config)."""
        text = json.dumps(status, sort_keys=True, separators=(",", ":"))
        patch = {"metadata": {"annotations": {STATUS: text}}}
        await self._apps.patch_namespaced_deployment(
            ref.name, ref.namespace, patch, _content_type=MERGE_PATCH
        )

    async def live_pods(self, namespace: str, selector: Mapping[str, Any] | None) -> list[Any]:
        """The Deployment's pods that are not already being deleted."""
        pods = await self._core.list_namespaced_pod(
            namespace, label_selector=label_selector(selector)
        )
        return [pod for pod in pods.items if pod.metadata.deletion_timestamp is None]

    async def set_deletion_costs(self, pods: list[Any], in_flight: Mapping[str, int]) -> int:
        """Cost = in-flight jobs, so the ReplicaSet removes idle pods first; returns patches."""
        patched = 0
        for pod in pods:
            cost = str(in_flight.get(pod.metadata.name, 0))
            if (pod.metadata.annotations or {}).get(POD_DELETION_COST) == cost:
                continue
            patch = {"metadata": {"annotations": {POD_DELETION_COST: cost}}}
            try:
                await self._core.patch_namespaced_pod(
                    pod.metadata.name, pod.metadata.namespace, patch, _content_type=MERGE_PATCH
                )
            except ApiException as exc:
                if exc.status == 403:
                    # the chart's admission policy allows pods labelled jobqueue.dev/autoscale
                    # only: without the cost the scale-down still happens, in any order
                    log.warning(
                        "cannot set %s on pod %s (%s): label the pod template %s=true",
                        POD_DELETION_COST, pod.metadata.name, exc.reason, AUTOSCALE_LABEL,
                    )  # fmt: skip
                    continue
                if exc.status != 404:  # a pod that just went away needs no cost
                    raise
            patched += 1
        return patched
