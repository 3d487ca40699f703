"""What the two real-pod suites (tests/containers on a real node, tests/kind on kind) read off
a release's worker pods and its database: exits, the timeline from the burst, the busiest pod.
Deadlines only bound a hang; timings are printed, never asserted."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.e2e import e2e_support as e2e
from tests.e2e.scenario import completed_at_least
from tests.e2e.timeline import Timeline
from tests.fixtures.pod_watch import Pod
from tests.fixtures.report import report

FIRST_JOB_STARTED = "SELECT min(started_at) FROM jobs"
BUSIEST_POD = """
SELECT w.name, count(*) AS running
FROM jobs AS j JOIN workers AS w ON w.id = j.worker_id
WHERE j.status = 'running'
GROUP BY w.name ORDER BY running DESC LIMIT 1"""


def watch_events(history: list[tuple[float, str, Pod]]) -> list[tuple[float, str, str]]:
    """Pod creations, deletion requests (the kubelet's SIGTERM) and removals, from a watch."""
    events, deleting = [], set()
    for at, kind, pod in history:
        name = pod["metadata"]["name"]
        if kind == "ADDED":
            events.append((at, "start", name))
        elif kind == "DELETED":
            events.append((at, "stop", name))
        elif pod["metadata"].get("deletionTimestamp") and name not in deleting:
            deleting.add(name)
            events.append((at, "sigterm", name))
    return events


def worker_exit_problems(history: list[tuple[float, str, Pod]]) -> list[str]:
    """Worker containers that restarted, or ended with anything but exit code 0 (137 would be
    the kubelet's SIGKILL after the grace period)."""
    problems = set()
    for _, _, pod in history:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            name = f"{pod['metadata']['name']}/{status['name']}"
            if status.get("restartCount"):
                problems.add(f"{name} restarted {status['restartCount']} times")
            terminated = (status.get("state") or {}).get("terminated")
            if terminated and terminated.get("exitCode") != 0:
                problems.add(f"{name} exited with {terminated.get('exitCode')}")
    return sorted(problems)


def first_container_start(history: list[tuple[float, str, Pod]], since: float) -> float | None:
    """When the watch first saw a container running in a worker pod made after `since` (wall
    clock): the pod the install starts, before the controller takes it to zero, is not one."""
    new_pods = {
        pod["metadata"]["name"] for at, kind, pod in history if kind == "ADDED" and at >= since
    }
    for at, _, pod in history:
        if at < since or pod["metadata"]["name"] not in new_pods:
            continue
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if (status.get("state") or {}).get("running"):
                return at
    return None


def ever_ready(history: list[tuple[float, str, Pod]]) -> set[str]:
    return {
        pod["metadata"]["name"]
        for _, _, pod in history
        for c in (pod.get("status") or {}).get("conditions") or []
        if c.get("type") == "Ready" and c.get("status") == "True"
    }


def container_endings(history: list[tuple[float, str, Pod]]) -> dict[str, set[str]]:
    """Each worker container's restarts and exits, with the kubelet's reason (OOMKilled,
    Error, ...), from a watch."""
    endings: dict[str, set[str]] = {}
    for _, _, pod in history:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            name = f"{pod['metadata']['name']}/{status['name']}"
            for key in ("state", "lastState"):
                terminated = (status.get(key) or {}).get("terminated")
                if terminated:
                    endings.setdefault(name, set()).add(
                        f"exit {terminated.get('exitCode')} ({terminated.get('reason')}), "
                        f"restarts {status.get('restartCount', 0)}"
                    )
    return endings


def failed_container_logs(history: list[tuple[float, str, Pod]]) -> str:
    """The last log lines of each worker container that ended with an error: the chart's
    FallbackToLogsOnError keeps them in the pod's status, which the watch saw before the pod
    (and its logs) went. With when the pod was asked to stop, and when the container ended."""
    texts: dict[str, str] = {}
    for _, _, pod in history:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            for key in ("state", "lastState"):
                terminated = (status.get(key) or {}).get("terminated") or {}
                if terminated.get("exitCode") and terminated.get("message"):
                    name = f"{pod['metadata']['name']}/{status['name']} ({key})"
                    texts[name] = (
                        f"deletion requested {pod['metadata'].get('deletionTimestamp')}, "
                        f"started {terminated.get('startedAt')}, "
                        f"finished {terminated.get('finishedAt')}, "
                        f"exit {terminated['exitCode']}:\n{terminated['message']}"
                    )
    return "".join(f"--- {name}: {text}\n" for name, text in texts.items())


def exit_problems(stack: Any, since: float) -> str:
    """worker_exit_problems of the pods made after `since` (the burst), with each
    container's endings and the namespace's Warning events. The pod the install starts
    is left out: in hook mode it starts before the post-install hook has migrated, exits
    1 ("relation workers does not exist") and restarts until the schema exists."""
    # at_zero() held at the burst: every pod seen from then on was made after it
    seen = [e for e in stack.workers.history if e[0] >= since]
    # 143 is a pod stopped while it was still starting: it held no job, nothing to drain
    never_ready = {p["metadata"]["name"] for _, _, p in seen} - ever_ready(seen)
    problems = [
        problem for problem in worker_exit_problems(seen)
        if not (problem.endswith("exited with 143") and problem.split("/")[0] in never_ready)
    ]  # fmt: skip
    if not problems:
        return ""
    warnings = stack.cluster.kubectl(
        "get", "events", "-n", stack.namespace, "--field-selector", "type=Warning", check=False
    )  # fmt: skip
    endings = container_endings(stack.workers.history)
    logs = failed_container_logs(stack.workers.history)
    return f"{problems}\n{endings}\n{warnings.stdout}\n{logs}"


async def first_job_start(dsn: str) -> float | None:
    conn = await asyncpg.connect(dsn)
    try:
        started = await conn.fetchval(FIRST_JOB_STARTED)
    finally:
        await conn.close()
    return started.timestamp() if started else None


async def print_timeline(stack: Any, timeline: Timeline, variant: str, suite: str) -> None:
    """Burst to: first scale-up, first container started, first job started on a pod, drained,
    back at zero."""
    summary: dict[str, float | None] = dict.fromkeys(
        ("scale-up", "container", "job", "drained", "zero")
    )
    samples = timeline.samples
    summary["scale-up"] = next((s.t for s in samples if s.replicas > 0), None)
    container = first_container_start(stack.workers.history, timeline.started_wall)
    job = await first_job_start(stack.dsn)
    for key, wall in (("container", container), ("job", job)):
        if wall is not None:
            summary[key] = round(wall - timeline.started_wall, 2)
    summary["drained"] = next(
        (s.t for s in samples if s.completed >= stack.scenario.total_jobs), None
    )
    drained = summary["drained"]
    if drained is not None:
        summary["zero"] = next((s.t for s in samples if s.t > drained and s.replicas == 0), None)
    text = ", ".join(f"{k} {'never' if v is None else f'{v:.1f} s'}" for k, v in summary.items())
    report(f"{suite} timeline ({variant}, from the burst): {text}")
    before = [e for e in stack.workers.history if e[0] < timeline.started_wall]
    report(f"the install's worker pod ({variant}): {container_endings(before) or 'no exit'}")


def terminations(stack: Any, pod_name: str) -> list[int]:
    """The exit codes the watch saw for one pod's containers (137 would be a SIGKILL after
    the grace period)."""
    codes = []
    for _, _, pod in stack.workers.history:
        if pod["metadata"]["name"] != pod_name:
            continue
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if terminated:
                codes.append(int(terminated["exitCode"]))
    return sorted(set(codes))


async def delete_busiest(stack: Any, after_completed: int, deleted: list[tuple[str, int]]) -> None:
    """Once `after_completed` jobs have completed, delete the worker pod that holds the most
    running jobs (without waiting), and note its name and running count in `deleted`."""
    await e2e.eventually(
        lambda: completed_at_least(stack.dsn, after_completed),
        what=f"{after_completed} jobs completed", context=stack.logs,
    )  # fmt: skip
    conn = await asyncpg.connect(stack.dsn)
    try:
        row = await conn.fetchrow(BUSIEST_POD)
    finally:
        await conn.close()
    assert row is not None, "no worker held a running job mid-burst"
    stack.cluster.kubectl("delete", "pod", row["name"], "-n", stack.namespace, "--wait=false")
    deleted.append((row["name"], int(row["running"])))
