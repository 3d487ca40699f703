"""Helpers for the controller's L3 tests: the operator as a real subprocess, a ServiceAccount
bound only to controller/rbac.yaml, Deployments, jobs, and waiting with a deadline."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import yaml

from controller import annotations as ann
from controller.scaler import COMPONENT
from tests.fixtures.kube import ControlPlane
from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process
from tests.fixtures.tools import REPO_ROOT
from worker.db.jobs import Job, NewJob, cancel_job, enqueue_many

RBAC_FILE = REPO_ROOT / "controller" / "rbac.yaml"
SERVICE_ACCOUNT = "jobqueue-controller"
T = TypeVar("T")


# ---------------------------------------------------------------- the controller process
class Controller:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, port: int, identity: str) -> None:
        self.proc, self.log, self.port, self.identity = proc, log, port, identity

    def _get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:  # not listening yet
            return 0, b""

    def metrics(self) -> str:
        return self._get("/metrics")[1].decode()

    def health(self) -> tuple[int, dict[str, Any]]:
        code, body = self._get("/healthz")
        return code, json.loads(body) if body else {}

    def kill(self) -> None:
        """SIGKILL, as a crashed node would: no lease release, no goodbye."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc)

    def tail(self) -> str:
        return log_tail(self.log, 60)


def start_controller(
    *,
    kubeconfig: Path,
    namespace: str,
    dsn: str,
    log_dir: Path,
    identity: str = "controller-a",
    **extra_env: str,
) -> Controller:
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "DB_URL": dsn,
        "JOBQUEUE_CONTROLLER_NAMESPACES": namespace,
        "JOBQUEUE_CONTROLLER_LEASE_NAMESPACE": namespace,
        "JOBQUEUE_CONTROLLER_LEASE_SECONDS": "3",
        "JOBQUEUE_CONTROLLER_INTERVAL": "0.3",
        "JOBQUEUE_CONTROLLER_STATUS_INTERVAL": "0.5",
        "JOBQUEUE_CONTROLLER_DB_TIMEOUT": "2",
        "JOBQUEUE_CONTROLLER_PORT": str(port),
        "JOBQUEUE_CONTROLLER_IDENTITY": identity,
        **extra_env,
    }
    log = log_dir / f"{identity}.log"
    proc = start_logged([sys.executable, "-m", "worker", "controller"], log, env=env, cwd=REPO_ROOT)
    return Controller(proc, log, port, identity)


def start_tracked(
    controllers: list[Controller],
    kubeconfig: Path,
    namespace: str,
    dsn: str,
    log_dir: Path,
    **extra_env: str,
) -> Controller:
    """start_controller, and the controller added to the `controllers` fixture's list."""
    controller = start_controller(
        kubeconfig=kubeconfig, namespace=namespace, dsn=dsn, log_dir=log_dir, **extra_env
    )
    controllers.append(controller)
    return controller


# ---------------------------------------------------------------- RBAC
def restricted_kubeconfig(plane: ControlPlane, namespace: str, path: Path) -> Path:
    """A ServiceAccount bound only to controller/rbac.yaml's Role; a kubeconfig with its token."""
    role = yaml.safe_load(RBAC_FILE.read_text())
    role["metadata"]["namespace"] = namespace
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT}}
    plane.apply(account, namespace)
    plane.apply(role, namespace)
    plane.apply(binding, namespace)
    token = plane.service_account_token(namespace, SERVICE_ACCOUNT)
    return plane.kubeconfig_for_token(token, path, namespace)


# ---------------------------------------------------------------- Kubernetes objects
def deployment(
    name: str,
    *,
    replicas: int = 0,
    annotations: dict[str, str] | None = None,
    labelled: bool = True,
) -> dict[str, Any]:
    labels = {ann.AUTOSCALE_LABEL: "true"} if labelled else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                # never scheduled on L3 (no controller-manager): only the object matters
                "spec": {
                    "containers": [{"name": "worker", "image": "example.invalid/worker:test"}]
                },
            },
        },
    }


def pod(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "worker", "image": "example.invalid/worker:test"}]},
    }


def get(plane: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return dict(plane.get_json(kind, name, "-n", namespace))


def replicas(plane: ControlPlane, namespace: str, name: str) -> int:
    return int(get(plane, namespace, "deployment", name)["spec"].get("replicas") or 0)


def status(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    text = (get(plane, namespace, "deployment", name)["metadata"].get("annotations") or {}).get(
        ann.STATUS
    )
    return dict(json.loads(text)) if text else {}


def events(
    plane: ControlPlane, namespace: str, name: str, reason: str | None = None
) -> list[dict[str, Any]]:
    found = plane.get_json(
        "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
    )
    # Only the controller's own Events: kube-controller-manager, when the session runs it,
    # reports on the same Deployments.
    items = [
        e
        for e in found["items"]
        if e.get("reportingComponent") == COMPONENT
        and (reason is None or e.get("reason") == reason)
    ]
    # In the order they were written: creationTimestamp has whole seconds, and two Events of
    # one second used to fall in the order of their random names; etcd's revision breaks ties.
    return sorted(
        items,
        key=lambda e: (e["metadata"]["creationTimestamp"], int(e["metadata"]["resourceVersion"])),
    )


def annotate(plane: ControlPlane, namespace: str, name: str, **pairs: str) -> None:
    plane.kubectl(
        "annotate",
        "--overwrite",
        "-n",
        namespace,
        "deployment",
        name,
        *[f"{k}={v}" for k, v in pairs.items()],
    )


# ---------------------------------------------------------------- jobs
async def with_connection(dsn: str, use: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """`use`'s result on a connection of its own, closed after."""
    conn = await asyncpg.connect(dsn)
    try:
        return await use(conn)
    finally:
        await conn.close()


async def enqueue(dsn: str, queue: str, count: int) -> list[Job]:
    jobs = [NewJob("noop", queue_name=queue) for _ in range(count)]
    pairs = await with_connection(dsn, lambda conn: enqueue_many(conn, jobs))
    return [job for job, _ in pairs]


async def cancel(dsn: str, jobs: Sequence[Job]) -> None:
    async def cancel_all(conn: asyncpg.Connection) -> None:
        # one transaction: the controller sees all of them go at once, never a part-way depth
        async with conn.transaction():
            for job in jobs:
                await cancel_job(conn, job.id)

    await with_connection(dsn, cancel_all)


# ---------------------------------------------------------------- waiting
async def eventually(
    probe: Callable[[], T] | Callable[[], Awaitable[T]],
    *,
    what: str,
    within: float = 60,
    interval: float = 0.2,
    controllers: Sequence[Controller] = (),
) -> T:
    """The first truthy result of `probe` before the deadline; the deadline only bounds a hang."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last  # type: ignore[no-any-return]
        for controller in controllers:
            if controller.proc.poll() is not None:
                raise AssertionError(
                    f"controller {controller.identity} exited:\n{controller.tail()}"
                )
        await asyncio.sleep(interval)
    logs = "\n".join(f"--- {c.identity}\n{c.tail()}" for c in controllers)
    raise AssertionError(
        f"timed out after {within:.0f}s waiting for {what} (last: {last!r})\n{logs}"
    )


@dataclass(frozen=True)
class Watch:
    """Waits on one namespace's Deployments that fail early, with the logs, when one of the
    controllers exits."""

    plane: ControlPlane
    namespace: str
    controllers: Sequence[Controller] = ()

    async def replicas(self, name: str, count: int, what: str) -> None:
        """Until the Deployment `name` asks for `count` replicas."""
        await eventually(
            lambda: replicas(self.plane, self.namespace, name) == count,
            what=what,
            controllers=self.controllers,
        )

    async def status(self, name: str, what: str, **expected: object) -> dict[str, Any]:
        """The Deployment's status annotation, once each key of `expected` reads its value."""

        def probe() -> dict[str, Any]:
            found = status(self.plane, self.namespace, name)
            return found if all(found.get(k) == v for k, v in expected.items()) else {}

        return await eventually(probe, what=what, controllers=self.controllers)
