"""What the end-to-end suites (kwok here, kind with Docker) share: the scenario's numbers, the
chart values, the API client that enqueues the burst, and the exactly-once ledger checks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import httpx

from tests.e2e.e2e_handlers import CREATE_RUNS_TABLE
from tests.k8s import harness

RELEASE = "jq"
POOL = "default"
WORKER_DEPLOYMENT = f"{RELEASE}-job-queue-worker-{POOL}"
API_TOKEN_SECRET = f"{RELEASE}-job-queue-api-token"
JOB_TYPE = "e2e_sleep"


@dataclass(frozen=True)
class Scenario:
    """One burst from zero workers. 2,000 jobs over jobs_per_replica ask for max_replicas."""

    total_jobs: int = 2000
    job_seconds: float = 0.05
    max_replicas: int = 4
    jobs_per_replica: int = 500
    scale_down_delay: int = 3
    concurrency: int = 5
    grace_seconds: int = 20
    drain_timeout: int = 15
    lease_seconds: float = 30.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pool_values(scenario: Scenario) -> dict[str, Any]:
    """The one autoscaled worker pool, and the settings the scenario needs."""
    return {
        "config": {
            "leaseSeconds": scenario.lease_seconds,
            "extra": {
                # fresh in-flight counts for pod-deletion-cost, and a quick rescue
                "JOBQUEUE_HEARTBEAT_SECONDS": "1",
                "JOBQUEUE_RESCUE_INTERVAL": "1",
                # the whole burst in one transaction: the controller's first look sees all of it
                "JOBQUEUE_API_MAX_BATCH": str(scenario.total_jobs),
            },
        },
        "controller": {"interval": 0.5},
        "workers": {
            POOL: {
                "queues": ["default"],
                "concurrency": scenario.concurrency,
                "pollInterval": 0.5,
                "terminationGracePeriodSeconds": scenario.grace_seconds,
                "drainTimeout": scenario.drain_timeout,
                "autoscale": {
                    "enabled": True,
                    "minReplicas": 0,
                    "maxReplicas": scenario.max_replicas,
                    "jobsPerReplica": scenario.jobs_per_replica,
                    "scaleDownDelay": scenario.scale_down_delay,
                },
            }
        },
    }


@dataclass(frozen=True)
class Database:
    """A DSN's parts, as the chart's externalDatabase values and Secret want them."""

    host: str
    port: int
    name: str
    user: str
    password: str

    @classmethod
    def from_dsn(cls, dsn: str) -> Database:
        parts = urlsplit(dsn)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            name=parts.path.lstrip("/"),
            user=unquote(parts.username or "postgres"),
            # trust authentication ignores it, but the chart requires a Secret all the same
            password=unquote(parts.password or "unused-with-trust-auth"),
        )


async def create_runs_table(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(CREATE_RUNS_TABLE)
    finally:
        await conn.close()


def secret_value(cluster: Any, namespace: str, name: str, key: str) -> str:
    """One key of a Secret (`cluster` has kubectl(), as ControlPlane does)."""
    out = cluster.kubectl("get", "secret", name, "-n", namespace, "-o", f"jsonpath={{.data.{key}}}")
    return base64.b64decode(out.stdout).decode()


def selector_of(deployment: dict[str, Any]) -> str:
    """A Deployment's pod selector as a label-selector string."""
    labels = deployment["spec"]["selector"]["matchLabels"]
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


# ---------------------------------------------------------------- waiting
async def eventually(
    probe: Callable[[], Any],
    *,
    what: str,
    within: float = 300,
    interval: float = 0.5,
    context: Callable[[], str] = lambda: "",
) -> Any:
    """harness.eventually (the generous deadline only bounds a hang), with `context()` (e.g. the
    controller's log) in the failure message."""
    try:
        return await harness.eventually(probe, what=what, within=within, interval=interval)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{context()}") from None


# ---------------------------------------------------------------- the API
class QueueApi:
    def __init__(self, base_url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120)

    async def close(self) -> None:
        await self.client.aclose()

    async def ready(self) -> bool:
        try:
            return (await self.client.get("/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def enqueue_burst(self, scenario: Scenario) -> list[int]:
        """The whole burst in one batch request (one transaction)."""
        job = {
            "job_type": JOB_TYPE,
            "payload": {"seconds": scenario.job_seconds},
            "queue_name": "default",
        }
        response = await self.client.post(
            "/api/v1/queue/jobs/batch", json={"jobs": [job] * scenario.total_jobs}
        )
        assert response.status_code == 201, response.text[:2000]
        body = response.json()
        assert body["created"] == scenario.total_jobs, body
        return [item["id"] for item in body["jobs"]]


# ---------------------------------------------------------------- the ledger
LEDGER = """
SELECT j.id, j.status::text AS status, j.attempts, j.last_error, j.result,
       coalesce(array_agg(r.attempt ORDER BY r.attempt, r.ran_at)
                FILTER (WHERE r.job_id IS NOT NULL), '{}') AS run_attempts,
       coalesce(array_agg(r.worker ORDER BY r.attempt, r.ran_at)
                FILTER (WHERE r.job_id IS NOT NULL), '{}') AS run_workers
FROM jobs AS j LEFT JOIN e2e_runs AS r ON r.job_id = j.id
GROUP BY j.id
ORDER BY j.id"""
STRAY_RUNS = "SELECT count(*) FROM e2e_runs WHERE job_id NOT IN (SELECT id FROM jobs)"
COMPLETED = "SELECT count(*) FROM jobs WHERE status = 'completed'"


async def completed_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(COMPLETED))
    finally:
        await conn.close()


@dataclass(frozen=True)
class Crash:
    """A worker process killed mid-burst: its worker id, pod and pid, and the jobs it left
    running."""

    worker_id: str
    pod: str
    pid: int
    left_running: frozenset[int]


async def ledger_problems(dsn: str, job_ids: list[int], crashes: Sequence[Crash] = ()) -> list[str]:
    """Every way the run broke "each job completed exactly once" (an empty list when it held).

    Without a crash every job ran once: attempts = 1, no error, one run. A job a killed worker
    left running was rescued once: attempts = 2, the rescue's error naming that worker, a second
    run, and at most one earlier run, on the killed worker's pod."""
    rescued = {job_id: crash for crash in crashes for job_id in crash.left_running}
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(LEDGER)
        stray = await conn.fetchval(STRAY_RUNS)
    finally:
        await conn.close()
    problems = [f"{stray} runs of jobs that do not exist"] if stray else []
    found = {row["id"]: row for row in rows}
    if sorted(found) != sorted(job_ids):
        problems.append(f"the jobs table holds {len(found)} jobs, the burst made {len(job_ids)}")
    for job_id in job_ids:
        row = found.get(job_id)
        if row is not None:
            problems += _job_problems(row, rescued.get(job_id))
    return problems


def _job_problems(row: asyncpg.Record, crash: Crash | None) -> list[str]:
    where = f"job {row['id']}"
    attempts, runs, workers = row["attempts"], list(row["run_attempts"]), list(row["run_workers"])
    problems = []
    if row["status"] != "completed":
        problems.append(f"{where}: status {row['status']} ({row['last_error']})")
    if crash is None:
        if attempts != 1 or runs != [1] or row["last_error"] is not None:
            problems.append(
                f"{where}: attempts {attempts}, runs {runs} on {workers}, "
                f"error {row['last_error']!r} (expected one attempt, one run, no error)"
            )
    else:
        rescues = (  # by the killed worker's free liveness lock, or by its lease
            f"worker {crash.worker_id} died (its liveness lock was free)",
            f"lease expired: worker {crash.worker_id}",
        )
        if attempts != 2 or not (row["last_error"] or "").startswith(rescues):
            problems.append(
                f"{where} (left running by killed {crash.pod}): attempts {attempts}, "
                f"error {row['last_error']!r} (expected one rescue)"
            )
        if runs not in ([2], [1, 2]) or (runs == [1, 2] and workers[0] != crash.pod):
            problems.append(
                f"{where} (left running by killed {crash.pod}): runs {runs} on {workers}"
            )
    result = json.loads(row["result"]) if row["result"] else {}
    if runs and (
        result.get("job_id") != row["id"]
        or result.get("attempt") != attempts
        or result.get("worker") != workers[-1]
    ):
        problems.append(f"{where}: result {result} does not match its last run ({workers[-1]})")
    return problems


# ---------------------------------------------------------------- deletion cost
def deletion_steps(
    history: list[tuple[float, str, dict[str, Any]]], gap: float
) -> list[dict[str, Any]]:
    """Replay a pod watch: each scale-down step's deleted pods and the pods that survived it,
    with the pod-deletion-cost every one of them carried when the step began. Only Running and
    Ready pods count: the ReplicaSet removes the others first, whatever their cost. Deletions
    less than `gap` seconds apart belong to one step, unless a live pod's cost changed between
    them: the controller costs the pods before each scale-down, so a changed cost means a new
    step (idle pods go one /scale at a time, as they become idle, often well within `gap`)."""
    live: dict[str, dict[str, Any]] = {}
    steps: list[dict[str, Any]] = []
    recosted = False  # a live pod's cost changed since the last step began
    for moment, kind, pod in history:
        name = pod["metadata"]["name"]
        deleting = kind == "DELETED" or bool(pod["metadata"].get("deletionTimestamp"))
        if deleting and name in live:
            if not steps or moment - steps[-1]["last"] > gap or recosted:
                costs = {n: _cost(p) for n, p in live.items()}
                steps.append({"at": moment, "last": moment, "costs": costs, "deleted": []})
                recosted = False
            steps[-1]["deleted"].append(name)
            steps[-1]["last"] = moment
            live.pop(name)
        elif not deleting and _running_and_ready(pod):
            recosted |= name in live and _cost(live[name]) != _cost(pod)
            live[name] = pod
        elif not deleting:
            live.pop(name, None)
    for step in steps:
        step["survivors"] = sorted(set(step["costs"]) - set(step["deleted"]))
    return steps


def _cost(pod: dict[str, Any]) -> str | None:
    annotations = pod["metadata"].get("annotations") or {}
    return annotations.get("controller.kubernetes.io/pod-deletion-cost")


def _running_and_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return status.get("phase") == "Running" and bool(ready) and ready[0].get("status") == "True"


def deletion_cost_problems(steps: list[dict[str, Any]]) -> list[str]:
    """Each step must delete pods the controller had costed, none dearer than a survivor."""
    problems = []
    for step in steps:
        costs = step["costs"]
        for name in step["deleted"]:
            if costs.get(name) is None:
                problems.append(f"{name} was deleted without a pod-deletion-cost")
        deleted = [int(costs[n]) for n in step["deleted"] if costs.get(n) is not None]
        kept = [int(costs[n]) for n in step["survivors"] if costs.get(n) is not None]
        if deleted and kept and max(deleted) > min(kept):
            problems.append(f"a busier pod went first: {costs}, deleted {step['deleted']}")
    return problems
