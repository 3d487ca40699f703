"""`kubectl jobqueue`: what the autoscaler is doing and why, from plain kubectl.

The console script is named `kubectl-jobqueue`, so kubectl finds it on PATH as a plugin.
- `status` lists the autoscaled Deployments (label jobqueue.dev/autoscale=true) with their
  queues, and the depth, running jobs, desired and actual replicas, last scale time and reason
  that the controller writes in the jobqueue.dev/status annotation.
- `events` shows their recent ScaledUp/ScaledDown Events and Warnings.
`-n`/`--namespace`, `-A`/`--all-namespaces`, `--kubeconfig` and `--context` work as in kubectl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from controller import annotations as ann
from worker.ages import format_age

SCALING_REASONS = (
    "ScaledUp",
    "ScaledDown",
    "LimitCapped",
    "DBConnectionBudget",
    "DatabasePressure",
    "DatabasePressureEnded",
)
_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class PluginError(RuntimeError):
    """A problem to report in one line (exit code 1)."""


# ---------------------------------------------------------------- reading the status
@dataclass(frozen=True)
class DeploymentStatus:
    namespace: str
    name: str
    queues: str
    min_replicas: int | None
    max_replicas: int | None
    depth: int | None
    running: int | None
    oldest_ready_seconds: float | None
    desired: int | None
    actual: int | None
    ready: int
    replicas: int
    last_scale_time: str | None
    reason: str


def describe_deployment(deployment: Any) -> DeploymentStatus:
    """One Deployment as `status` shows it; pure, so it is easy to reason about."""
    metadata = deployment.metadata
    annotations = dict(metadata.annotations or {})
    status = ann.status_of(annotations) or {}
    try:
        config = ann.parse(annotations)
        queues = ",".join(config.queues)
        low, high = config.scaling.min_replicas, config.scaling.max_replicas
        reason = str(status.get("reason") or "no status yet")
        # what binds, with its numbers: a cap, or the database pressure (and whom to blame)
        for binding in ("capacity", "databasePressure"):
            shown = status.get(binding)
            if isinstance(shown, dict) and shown.get("summary"):
                reason = f"{reason}: {shown['summary']}"
    except ann.InvalidAnnotation as exc:
        queues, low, high = annotations.get(ann.QUEUES, "default"), None, None
        reason = f"invalid {exc.annotation}"
    return DeploymentStatus(
        namespace=metadata.namespace,
        name=metadata.name,
        queues=queues,
        min_replicas=low,
        max_replicas=high,
        depth=status.get("depth"),
        running=status.get("running"),
        oldest_ready_seconds=status.get("oldestReadySeconds"),
        desired=status.get("desired"),
        actual=status.get("actual"),
        ready=(deployment.status.ready_replicas if deployment.status else None) or 0,
        replicas=deployment.spec.replicas or 0,
        last_scale_time=status.get("lastScaleTime"),
        reason=reason,
    )


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _age(moment: datetime | None, now: datetime) -> str:
    return format_age((now - moment).total_seconds()) if moment else "-"


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def status_rows(
    found: Sequence[DeploymentStatus], *, all_namespaces: bool, wide: bool, now: datetime
) -> list[list[str]]:
    header = ["NAME", "QUEUES", "DEPTH", "RUNNING", "DESIRED", "ACTUAL", "READY"]
    header += ["LAST SCALE", "REASON"]
    if wide:
        header += ["MIN", "MAX", "OLDEST READY"]
    rows = [(["NAMESPACE"] if all_namespaces else []) + header]
    for item in found:
        row = [item.name, item.queues, _text(item.depth), _text(item.running)]
        row += [_text(item.desired), _text(item.actual), f"{item.ready}/{item.replicas}"]
        row += [_age(_parse_time(item.last_scale_time), now), item.reason]
        if wide:
            oldest = item.oldest_ready_seconds
            row += [_text(item.min_replicas), _text(item.max_replicas)]
            row += [format_age(oldest) if oldest is not None else "-"]
        rows.append(([item.namespace] if all_namespaces else []) + row)
    return rows


def format_columns(rows: Sequence[Sequence[str]]) -> str:
    """kubectl's plain columns: left-aligned, three spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- events
@dataclass(frozen=True)
class ScalingEvent:
    namespace: str
    deployment: str
    type: str
    reason: str
    message: str
    last_seen: datetime | None
    count: int


def _event_time(event: Any) -> datetime | None:
    return event.last_timestamp or event.event_time or event.metadata.creation_timestamp


def select_events(
    events: Sequence[Any], deployments: set[tuple[str, str]], limit: int
) -> list[ScalingEvent]:
    """The autoscaled Deployments' scaling Events and Warnings, oldest first, the last `limit`."""
    chosen = []
    for event in events:
        target = event.involved_object
        if (target.namespace, target.name) not in deployments:
            continue
        if event.reason not in SCALING_REASONS and event.type != "Warning":
            continue
        chosen.append(
            ScalingEvent(
                namespace=target.namespace,
                deployment=target.name,
                type=event.type or "Normal",
                reason=event.reason or "",
                message=" ".join((event.message or "").split()),
                last_seen=_event_time(event),
                count=event.count or 1,
            )
        )
    oldest = datetime.min.replace(tzinfo=UTC)
    chosen.sort(key=lambda e: (e.last_seen or oldest, e.namespace, e.deployment))
    return chosen[-limit:]


def event_rows(
    found: Sequence[ScalingEvent], *, all_namespaces: bool, now: datetime
) -> list[list[str]]:
    header = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    rows = [(["NAMESPACE"] if all_namespaces else []) + header]
    for event in found:
        seen = _age(event.last_seen, now) + (f" (x{event.count})" if event.count > 1 else "")
        row = [seen, event.type, event.reason, f"deployment/{event.deployment}", event.message]
        rows.append(([event.namespace] if all_namespaces else []) + row)
    return rows


# ---------------------------------------------------------------- Kubernetes
def kubeconfig_source(explicit: str | None) -> str | None:
    """The kubeconfig path(s) kubectl would read: --kubeconfig, else KUBECONFIG (a list, as in
    kubectl), else ~/.kube/config; None means the pod's service account."""
    from worker.settings import ControllerSettings

    paths = explicit or ControllerSettings().kubeconfig
    if paths is None:
        default = os.path.expanduser("~/.kube/config")
        if os.path.exists(default) or not os.path.exists(f"{_SERVICE_ACCOUNT_DIR}/token"):
            paths = default
        else:
            return None
    if not any(os.path.exists(os.path.expanduser(p)) for p in paths.split(os.pathsep) if p):
        raise PluginError(f"no kubeconfig found at {paths}: pass --kubeconfig or set KUBECONFIG")
    return paths


async def _connect(paths: str | None, context: str | None) -> tuple[Any, str]:
    """An ApiClient and the namespace kubectl would default to."""
    from kubernetes_asyncio import config as kube_config
    from kubernetes_asyncio.client import ApiClient, Configuration
    from kubernetes_asyncio.config.config_exception import ConfigException

    configuration = Configuration()
    if paths is None:
        kube_config.load_incluster_config(client_configuration=configuration)
        namespace = Path(_SERVICE_ACCOUNT_DIR, "namespace").read_text().strip()  # noqa: ASYNC240
        return ApiClient(configuration), namespace
    try:
        loader = await kube_config.load_kube_config(
            config_file=paths,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, OSError, KeyError, TypeError, ValueError) as exc:
        raise PluginError(
            f"cannot use the kubeconfig {paths}: {exc or type(exc).__name__} (check --context)"
        ) from None
    current = loader.current_context or {}
    namespace = (current.get("context") or {}).get("namespace") or "default"
    return ApiClient(configuration), namespace


async def _call(what: str, coroutine: Any, server: str) -> Any:
    from aiohttp import ClientError
    from kubernetes_asyncio.client.exceptions import ApiException

    try:
        return await coroutine
    except ApiException as exc:
        detail = exc.reason
        if exc.body:
            try:
                detail = json.loads(exc.body).get("message") or detail
            except ValueError:
                pass
        raise PluginError(f"cannot {what}: {detail} (HTTP {exc.status})") from None
    except (ClientError, OSError, TimeoutError) as exc:
        raise PluginError(
            f"cannot reach the Kubernetes API at {server}: {exc or type(exc).__name__}. "
            "Check the cluster is up and that --kubeconfig/--context point at it"
        ) from None


async def _list(
    api: Any,
    what: str,
    namespace: str | None,
    everywhere: Callable[[], Any],
    here: Callable[[str], Any],
) -> list[Any]:
    """One list call: `everywhere()` for all namespaces, else `here(namespace)`."""
    where = "in all namespaces" if namespace is None else f"in namespace {namespace}"
    call = everywhere() if namespace is None else here(namespace)
    result = await _call(f"list {what} {where}", call, api.configuration.host)
    return list(result.items)


async def _deployments(api: Any, namespace: str | None) -> list[Any]:
    from kubernetes_asyncio.client import AppsV1Api

    apps = AppsV1Api(api)
    return await _list(
        api,
        "deployments",
        namespace,
        partial(apps.list_deployment_for_all_namespaces, label_selector=ann.LABEL_SELECTOR),
        partial(apps.list_namespaced_deployment, label_selector=ann.LABEL_SELECTOR),
    )


async def _events(api: Any, namespace: str | None) -> list[Any]:
    from kubernetes_asyncio.client import CoreV1Api

    core = CoreV1Api(api)
    selector = "involvedObject.kind=Deployment"
    return await _list(
        api,
        "events",
        namespace,
        partial(core.list_event_for_all_namespaces, field_selector=selector),
        partial(core.list_namespaced_event, field_selector=selector),
    )


# ---------------------------------------------------------------- commands
async def run(args: argparse.Namespace) -> str:
    api, default_namespace = await _connect(kubeconfig_source(args.kubeconfig), args.context)
    try:
        namespace = None if args.all_namespaces else (args.namespace or default_namespace)
        deployments = [
            d
            for d in await _deployments(api, namespace)
            if not args.name or d.metadata.name == args.name
        ]
        now = datetime.now(UTC)
        if args.command == "status":
            found = sorted(
                (describe_deployment(d) for d in deployments), key=lambda s: (s.namespace, s.name)
            )
            if args.output == "json":
                return json.dumps([asdict(item) for item in found], indent=2)
            if not found:
                return _nothing(namespace, args.name)
            rows = status_rows(
                found, all_namespaces=namespace is None, wide=args.output == "wide", now=now
            )
            return format_columns(rows)
        keys = {(d.metadata.namespace, d.metadata.name) for d in deployments}
        events = select_events(await _events(api, namespace), keys, args.limit)
        if args.output == "json":
            return json.dumps([asdict(e) for e in events], indent=2, default=str)
        if not events:
            return _nothing(namespace, args.name, "scaling events")
        return format_columns(event_rows(events, all_namespaces=namespace is None, now=now))
    finally:
        await api.close()


def _nothing(namespace: str | None, name: str | None, what: str = "autoscaled Deployments") -> str:
    where = "in any namespace" if namespace is None else f"in namespace {namespace}"
    named = f" named {name}" if name else ""
    return f"No {what}{named} found {where} (label {ann.LABEL_SELECTOR})."


def build_parser() -> argparse.ArgumentParser:
    # The shared flags go on the top parser and on each command, as kubectl accepts them
    # before or after the command; SUPPRESS keeps a command's missing flag from hiding the
    # top parser's value.
    def add_common(parser: argparse.ArgumentParser, default: Any) -> None:
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("-n", "--namespace", default=default, help="the namespace to look in")
        scope.add_argument(
            "-A",
            "--all-namespaces",
            action="store_true",
            default=False if default is None else default,
            help="look in every namespace",
        )
        parser.add_argument("--kubeconfig", default=default, help="path to the kubeconfig file")
        parser.add_argument("--context", default=default, help="the kubeconfig context to use")

    top = argparse.ArgumentParser(
        prog="kubectl jobqueue",
        description="What the job-queue autoscaler is doing, and why.",
    )
    add_common(top, None)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser(
        "status", help="autoscaled Deployments: queues, depth, replicas, last scale and reason"
    )
    events = commands.add_parser("events", help="recent ScaledUp/ScaledDown Events and Warnings")
    for parser in (status, events):
        add_common(parser, argparse.SUPPRESS)
        parser.add_argument("name", nargs="?", help="only this Deployment")
        parser.add_argument("-o", "--output", choices=("table", "wide", "json"), default="table")
    events.add_argument("--limit", type=int, default=30, help="show at most this many")
    return top


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        print(asyncio.run(run(args)))
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
