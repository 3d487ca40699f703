"""Where a burst's seconds go, on the L4 plane: from the enqueue's commit to each step of the
first worker's start, for any scaler, measured the same way for ours and for KEDA.

- scaled: the Deployment's spec.replicas first above zero (a watch on Deployments);
- podCreated: the first new pod (the pod runner's watch);
- containerStarted: the pod runner started its process (the kubelet's part, on L4);
- imported, connected, registered, firstClaim: the first worker to claim, as it reported its own
  start (workers.startup, wall clock);
- firstJob: the first job's started_at.
Ours adds `decision`, from the controller's own cold-start metrics (which it times from the
oldest job's run_at; moved here onto the commit's clock).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes import watch as kube_watch

from controller.metrics import COLD_START_PHASES
from worker.runtime.startup import PHASES as _REPORTED

PHASES = (*COLD_START_PHASES, "firstJob")  # the controller's phases, then the first job


class ReplicasWatch:
    """Every change of each Deployment's spec.replicas in one namespace, with when it was seen."""

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        self._apps = kube_client.AppsV1Api(kube_config.new_client_from_config(kubeconfig))
        self._namespace = namespace
        self._lock = threading.Lock()
        self.changes: list[tuple[float, str, int]] = []
        self._last: dict[str, int] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="replicas-watch", daemon=True)

    def start(self) -> ReplicasWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                stream = kube_watch.Watch().stream(
                    self._apps.list_namespaced_deployment, self._namespace, timeout_seconds=5
                )
                for event in stream:
                    deployment = event["object"]
                    name, replicas = deployment.metadata.name, deployment.spec.replicas or 0
                    with self._lock:
                        if self._last.get(name) != replicas:
                            self._last[name] = replicas
                            self.changes.append((time.time(), name, replicas))
                    if self._stopping.is_set():
                        break
            except Exception:  # the API hiccups: watch again
                self._stopping.wait(0.2)

    def first_up(self, name: str, since: float) -> float | None:
        with self._lock:
            return next(
                (at for at, who, n in self.changes if who == name and at >= since and n > 0), None
            )


def controller_cold_start(port: int, deployment: str) -> dict[str, float]:
    """The controller's last cold start of `deployment`: phase -> seconds after its burst."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = re.compile(
        r'^jobqueue_controller_last_cold_start_seconds\{deployment="' + re.escape(deployment)
        + r'",namespace="[^"]*",phase="(\w+)"\} (\S+)$',
        re.M,
    )  # fmt: skip
    return {phase: float(value) for phase, value in pattern.findall(text)}


def first_startup(startups: Mapping[str, Any], since: float) -> dict[str, float] | None:
    """The reported start of the first worker to claim, among those registered after `since`."""
    found = []
    for raw in startups.values():
        phases = json.loads(raw) if isinstance(raw, str) else dict(raw)
        if phases.get("registered", 0) >= since and "firstClaim" in phases:
            found.append(phases)
    return min(found, key=lambda p: p["firstClaim"], default=None)


def burst_phases(
    committed: float,
    *,
    scaled: float | None,
    pod_created: float | None,
    container_started: float | None,
    startup: Mapping[str, float] | None,
    first_job: float | None,
    controller: Mapping[str, float] | None = None,
    run_at: float | None = None,
) -> dict[str, float]:
    """Each phase as seconds after the commit (arguments are seconds since the epoch; the
    controller's phases are seconds after `run_at`, the oldest job's)."""
    phases: dict[str, float] = {}
    if controller and run_at is not None and "decision" in controller:
        phases["decision"] = run_at + controller["decision"] - committed
    moments = {"scaled": scaled, "podCreated": pod_created, "containerStarted": container_started}
    for phase in _REPORTED:
        moments[phase] = (startup or {}).get(phase)
    moments["firstJob"] = first_job
    for phase, at in moments.items():
        if at is not None:
            phases[phase] = at - committed
    return {phase: phases[phase] for phase in PHASES if phase in phases}


def first_after(events: Sequence[tuple[float, str, Any]], kind: str, since: float) -> float | None:
    return next((at for at, seen, _ in events if seen == kind and at >= since), None)
