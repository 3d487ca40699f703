"""Leader election on a coordination.k8s.io/v1 Lease, so only one controller replica scales.

Followers never compare the holder's timestamps with their own clock: they note when they last
saw the Lease change (its resourceVersion), and take it over once it stayed unchanged for the
lease duration. The holder stops acting as leader when it has not renewed for two thirds of the
duration, so it steps down before anyone can take over. Every write carries the resourceVersion
it read, so two candidates can never both win.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio.client import ApiClient, CoordinationV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from controller.scaler import api_time

log = logging.getLogger(__name__)


class LeaderElector:
    def __init__(
        self,
        api: ApiClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        # Any: bodies are plain dicts, so MicroTime keeps its exact six-digit form
        self._api: Any = CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._duration = max(1, math.ceil(lease_seconds))
        self._clock = clock
        self._on_change = on_change
        self._renewed_at: float | None = None  # our last successful write while holding it
        self._seen_version: str | None = None
        self._seen_at = 0.0
        self._was_leader = False

    @property
    def retry_period(self) -> float:
        # a holder survives one or two failed renewals before its two-thirds deadline
        return self._duration / 5

    @property
    def is_leader(self) -> bool:
        if self._renewed_at is None:
            return False
        return self._clock() - self._renewed_at < self._duration * 2 / 3

    def _notify(self) -> None:
        leader = self.is_leader
        if leader != self._was_leader:
            self._was_leader = leader
            log.info("leadership %s", "acquired" if leader else "lost", extra={"lease": self.name})
            if self._on_change is not None:
                self._on_change(leader)

    def _body(self, spec: dict[str, Any], resource_version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One round of the election; True when we hold the Lease afterwards."""
        now = self._clock()
        try:
            lease = await self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return await self._create(now)

        spec = lease.spec
        holder = spec.holder_identity if spec else None
        version = lease.metadata.resource_version
        if version != self._seen_version:
            self._seen_version, self._seen_at = version, now
        mine = holder == self.identity
        duration = (spec.lease_duration_seconds if spec else None) or self._duration
        expired = not holder or now - self._seen_at >= duration
        if not mine and not expired:
            self._renewed_at = None
            return False

        stamp = api_time(micro=True)
        transitions = (spec.lease_transitions if spec else None) or 0
        new_spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration,
            "renewTime": stamp,
            "acquireTime": (
                api_time(spec.acquire_time, micro=True) if mine and spec.acquire_time else stamp
            ),
            "leaseTransitions": transitions if mine else transitions + 1,
        }
        try:
            updated = await self._api.replace_namespaced_lease(
                self.name, self.namespace, self._body(new_spec, version)
            )
        except ApiException as exc:
            if exc.status == 409:  # someone else wrote first
                self._renewed_at = None
                return False
            raise
        self._seen_version, self._seen_at = updated.metadata.resource_version, now
        self._renewed_at = now
        if not mine:
            log.info("took over the lease from %r", holder or None)
        return True

    async def _create(self, now: float) -> bool:
        stamp = api_time(micro=True)
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration,
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": 0,
        }
        try:
            created = await self._api.create_namespaced_lease(
                self.namespace, self._body(spec, None)
            )
        except ApiException as exc:
            if exc.status == 409:  # another candidate created it first
                return False
            raise
        self._seen_version, self._seen_at = created.metadata.resource_version, now
        self._renewed_at = now
        return True

    async def run(self) -> None:
        """Campaign and renew forever; API errors only cost the rounds they happen in."""
        while True:
            try:
                await self.try_acquire_or_renew()
            except (TimeoutError, ApiException, OSError) as exc:
                log.warning("lease round failed: %s", exc)
            self._notify()
            await asyncio.sleep(self.retry_period)

    async def release(self) -> None:
        """On a clean shutdown, hand the Lease over at once instead of letting it expire."""
        if not self.is_leader:
            return
        self._renewed_at = None
        self._notify()
        try:
            lease = await self._api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity != self.identity:
                return
            spec = {
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "leaseTransitions": lease.spec.lease_transitions or 0,
            }
            await self._api.replace_namespaced_lease(
                self.name, self.namespace, self._body(spec, lease.metadata.resource_version)
            )
        except (TimeoutError, ApiException, OSError) as exc:
            log.warning("could not release the lease: %s", exc)
