"""OpenTelemetry across a real `jobqueue api` process and a real `jobqueue worker` process: one
trace from the API request to the acknowledgement, with the messaging attributes; and with
tracing off, no traceparent on the rows and no OpenTelemetry imported by our code."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.fixtures.doc_examples import run_bash_example
from tests.fixtures.otel_capture import SPANS_DIR, read_spans
from tests.fixtures.processes import free_port, log_tail, stop_process
from tests.integration.api_support import JOBS, api_process
from tests.integration.queue_support import REPO, eventually, start_worker_process

# a caller's own trace: the API's span must continue it
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
CALLER_HEADERS = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}


def traced_env(spans_dir: Path) -> dict[str, str]:
    return {
        "JOBQUEUE_OTEL": "true",
        "JOBQUEUE_OTEL_CONFIGURE": "tests.fixtures.otel_capture:install",
        SPANS_DIR: str(spans_dir),
        "PYTHONPATH": str(REPO),
        "JOBQUEUE_HANDLER_MODULES": "tests.integration.tracing_handlers",
    }


@contextmanager
def api_and_worker(dsn: str, tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """A real API process and a real worker process; yields the API's URL."""
    with api_process(dsn, tmp_path / "api.log", **env) as api:
        worker = start_worker_process(dsn, tmp_path / "worker.log", **env)
        try:
            yield api.url
        finally:
            stop_process(worker)
            print(f"--- worker log\n{log_tail(tmp_path / 'worker.log')}")
            print(f"--- api log\n{log_tail(tmp_path / 'api.log')}")


async def finished(client: httpx.AsyncClient, job_id: int) -> dict[str, Any]:
    async def terminal() -> dict[str, Any] | None:
        job = (await client.get(f"{JOBS}/{job_id}")).json()
        return job if job["status"] in ("completed", "failed") else None

    job: dict[str, Any] = await eventually(terminal, within=60, what=f"job {job_id} to finish")
    return job


def by_name(spans: list[dict[str, Any]], name: str, job_id: int | None = None) -> list[Any]:
    return [
        s
        for s in spans
        if s["name"] == name
        and (job_id is None or s["attributes"].get("messaging.message.id") == str(job_id))
    ]


def assert_messaging(span: dict[str, Any], operation_type: str, operation: str) -> None:
    attributes = span["attributes"]
    assert attributes["messaging.system"] == "jobqueue", span
    assert attributes["messaging.destination.name"] == "default", span
    assert attributes["messaging.operation.type"] == operation_type, span
    assert attributes["messaging.operation.name"] == operation, span


async def test_one_trace_from_the_api_request_to_the_acknowledgement(
    pg_dsn: str, tmp_path: Path
) -> None:
    spans_dir = tmp_path / "spans"
    spans_dir.mkdir()
    with api_and_worker(pg_dsn, tmp_path, traced_env(spans_dir)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            answer = await client.post(
                JOBS, json={"job_type": "test_traced", "payload": {}}, headers=CALLER_HEADERS
            )
            assert answer.status_code == 201, answer.text
            ok_id = answer.json()["id"]
            answer = await client.post(
                JOBS, json={"job_type": "test_always_fails", "payload": {}, "max_tries": 2}
            )
            failing_id = answer.json()["id"]
            answer = await client.post(
                f"{JOBS}/batch", json={"jobs": [{"job_type": "noop", "payload": {}}] * 2}
            )
            assert answer.status_code == 201, answer.text
            batch_ids = [job["id"] for job in answer.json()["jobs"]]
            assert (await finished(client, ok_id))["status"] == "completed"
            assert (await finished(client, failing_id))["status"] == "failed"

        async def settled() -> bool:
            spans = read_spans(spans_dir)
            return all(
                by_name(spans, name, job_id)
                for name, job_id in (
                    ("complete default", ok_id),
                    ("fail default", failing_id),
                    *(("complete default", job_id) for job_id in batch_ids),
                )
            )

        await eventually(settled, within=60, what="the acknowledgements' spans")
    spans = read_spans(spans_dir)

    # the request: FastAPI's server span continues the caller's trace
    (server,) = [s for s in spans if s["kind"] == "SERVER" and s["trace_id"] == CALLER_TRACE]
    assert server["service"] == "jobqueue-api"
    assert server["name"] == f"POST {JOBS}"
    assert server["parent_span_id"] == CALLER_SPAN

    # the enqueue: a producer span inside the request, whose context the row keeps
    (send,) = by_name(spans, "send default", ok_id)
    assert send["kind"] == "PRODUCER" and send["service"] == "jobqueue-api"
    assert send["trace_id"] == CALLER_TRACE
    assert send["parent_span_id"] == server["span_id"]
    assert_messaging(send, "send", "enqueue")
    conn = await asyncpg.connect(pg_dsn)
    try:
        stored = await conn.fetchval("SELECT traceparent FROM jobs WHERE id = $1", ok_id)
    finally:
        await conn.close()
    assert stored == f"00-{CALLER_TRACE}-{send['span_id']}-01"

    # the worker: claim and process are children of the enqueue, the ack of the process,
    # and the handler's own span nests in the process span
    (claim,) = by_name(spans, "claim default", ok_id)
    (process,) = by_name(spans, "process default", ok_id)
    (complete,) = by_name(spans, "complete default", ok_id)
    (work,) = by_name(spans, "handler work")
    for span, kind in ((claim, "CLIENT"), (process, "CONSUMER"), (complete, "CLIENT")):
        assert span["service"] == "jobqueue-worker" and span["kind"] == kind, span
        assert span["trace_id"] == CALLER_TRACE, span
    assert claim["parent_span_id"] == send["span_id"]
    assert process["parent_span_id"] == send["span_id"]
    assert complete["parent_span_id"] == process["span_id"]
    assert work["parent_span_id"] == process["span_id"] and work["trace_id"] == CALLER_TRACE
    assert_messaging(claim, "receive", "claim")
    assert_messaging(process, "process", "process")
    assert_messaging(complete, "settle", "complete")
    assert claim["attributes"]["messaging.batch.message_count"] >= 1
    assert process["attributes"]["jobqueue.job.type"] == "test_traced"
    assert process["status"] != "ERROR"
    assert claim["start"] <= claim["end"] <= process["start"] <= process["end"]
    assert process["end"] <= complete["end"]

    # a job that fails twice: its own trace, two claims and two runs, a retry then a fail
    (failing_send,) = by_name(spans, "send default", failing_id)
    trace_id = failing_send["trace_id"]
    assert trace_id != CALLER_TRACE
    runs = by_name(spans, "process default", failing_id)
    assert [r["attributes"]["jobqueue.job.attempt"] for r in runs] == [1, 2]
    assert all(r["status"] == "ERROR" and r["trace_id"] == trace_id for r in runs)
    assert len(by_name(spans, "claim default", failing_id)) == 2
    (retry,) = by_name(spans, "retry default", failing_id)
    (fail,) = by_name(spans, "fail default", failing_id)
    assert retry["parent_span_id"] == runs[0]["span_id"]
    assert fail["parent_span_id"] == runs[1]["span_id"]
    assert_messaging(retry, "settle", "retry")
    assert_messaging(fail, "settle", "fail")
    # a batch: one send span, the creation context of each of its jobs
    (batch_send,) = [
        s for s in by_name(spans, "send default") if "messaging.message.id" not in s["attributes"]
    ]
    assert batch_send["attributes"]["messaging.batch.message_count"] == 2
    conn = await asyncpg.connect(pg_dsn)
    try:
        stored_batch = await conn.fetch(
            "SELECT traceparent FROM jobs WHERE id = ANY($1::bigint[])", batch_ids
        )
    finally:
        await conn.close()
    # the flags are the SDK's: sampled, and (for a trace it started) W3C level 2's "random"
    expected = f"00-{batch_send['trace_id']}-{batch_send['span_id']}-"
    assert [r["traceparent"][:-2] for r in stored_batch] == [expected, expected]
    assert all(int(r["traceparent"][-2:], 16) & 1 for r in stored_batch)
    for job_id in batch_ids:
        (claimed,) = by_name(spans, "claim default", job_id)
        assert claimed["parent_span_id"] == batch_send["span_id"]

    # the probes make no spans
    assert not [s for s in spans if s["name"].endswith(("/healthz", "/readyz", "/livez"))]


async def test_a_workflow_batch_keeps_its_send_span_on_every_job(
    pg_dsn: str, tmp_path: Path
) -> None:
    """A batch with refs (the workflow path, not the plain batch's) gets one producer span too,
    and each of its jobs, blocked ones included, keeps that span's context."""
    spans_dir = tmp_path / "spans"
    spans_dir.mkdir()
    with api_process(pg_dsn, tmp_path / "api.log", **traced_env(spans_dir)) as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            answer = await client.post(
                f"{JOBS}/batch",
                json={
                    "jobs": [
                        {"job_type": "noop", "payload": {}, "ref": "first"},
                        {"job_type": "noop", "payload": {}, "depends_on": ["ref:first"]},
                    ]
                },
                headers=CALLER_HEADERS,
            )
            assert answer.status_code == 201, answer.text
            ids = [job["id"] for job in answer.json()["jobs"]]

        async def sent() -> list[Any]:
            return by_name(read_spans(spans_dir), "send default")

        (send,) = await eventually(sent, within=60, what="the batch's send span")
    assert send["trace_id"] == CALLER_TRACE
    assert send["attributes"]["messaging.batch.message_count"] == 2
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch(
            "SELECT status::text, traceparent FROM jobs WHERE id = ANY($1::bigint[]) ORDER BY id",
            ids,
        )
    finally:
        await conn.close()
    assert [r["status"] for r in rows] == ["pending", "blocked"]
    assert [r["traceparent"] for r in rows] == [f"00-{CALLER_TRACE}-{send['span_id']}-01"] * 2


async def test_tracing_off_stores_no_traceparent(pg_dsn: str, tmp_path: Path) -> None:
    env = {"JOBQUEUE_OTEL": "false", "JOBQUEUE_HANDLER_MODULES": ""}
    with api_and_worker(pg_dsn, tmp_path, env) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            answer = await client.post(
                JOBS, json={"job_type": "noop", "payload": {}}, headers=CALLER_HEADERS
            )
            job_id = answer.json()["id"]
            batch = await client.post(
                f"{JOBS}/batch", json={"jobs": [{"job_type": "noop", "payload": {}}] * 3}
            )
            assert batch.status_code == 201, batch.text
            assert (await finished(client, job_id))["status"] == "completed"
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch("SELECT traceparent FROM jobs")
    finally:
        await conn.close()
    assert [r["traceparent"] for r in rows] == [None] * 4


# Runs in a fresh interpreter: a worker that claims and runs a job imports nothing of
# OpenTelemetry; the API, driven through a request, imports no more of it than FastAPI itself
# does (FastAPI's native telemetry imports OpenTelemetry's API, when installed, at its import).
OFF_PROBE = """
import asyncio, json, sys
from worker.db.connection import connect
from worker.db.jobs import NewJob, enqueue, get_job
from worker.handlers import registry
from worker.runtime.main import WorkerProcess
from worker.settings import Settings

def otel_modules():
    return {m for m in sys.modules if m.startswith("opentelemetry")}

async def main(dsn):
    settings = Settings(db_url=dsn, otel=False, worker_port=0, handler_modules=[],
                        retention_seconds=0, poll_interval=0.1)
    conn = await connect(dsn)
    job, _ = await enqueue(conn, NewJob("noop"))
    process = WorkerProcess(settings.worker, registry, dsn=dsn)
    await process.start()
    for _ in range(600):
        if (await get_job(conn, job.id)).status == "completed":
            break
        await asyncio.sleep(0.1)
    status = (await get_job(conn, job.id)).status
    await process.shutdown()
    worker_imports = sorted(otel_modules())

    import fastapi, httpx
    baseline = otel_modules()
    from worker.api.app import create_app
    app = create_app(settings.api, dsn)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            answer = await client.post("/api/v1/queue/jobs",
                                       json={"job_type": "noop", "payload": {}},
                                       headers={"traceparent": sys.argv[2]})
    await conn.close()
    print(json.dumps({
        "worker_ran": status,
        "status": answer.status_code,
        "worker_imports": worker_imports,
        "api_imports": sorted(otel_modules() - baseline),
        "spans_module": "worker.tracing.spans" in sys.modules,
    }))

asyncio.run(main(sys.argv[1]))
"""


def test_tracing_off_imports_no_opentelemetry(pg_dsn: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", OFF_PROBE, pg_dsn, CALLER_HEADERS["traceparent"]],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["worker_ran"] == "completed" and report["status"] == 201
    assert report["worker_imports"] == []
    assert report["api_imports"] == []
    assert report["spans_module"] is False


def test_the_docs_console_example_prints_one_trace(pg_dsn: str, tmp_path: Path) -> None:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "DB_URL": pg_dsn,
        "PORT": str(free_port()),
        "PYTHONPATH": str(REPO),
    }
    done = run_bash_example("docs/tracing.md", "console-trace", env, tmp_path)
    stdout, stderr = done.stdout, done.stderr
    logs = "\n".join(log_tail(tmp_path / name) for name in ("api.log", "worker.log"))
    assert done.returncode == 0, f"{stdout}\n{stderr}\n{logs}"
    # grep -c's answer: spans of the caller's trace in each process
    counts = dict(line.rsplit(":", 1) for line in stdout.split("}")[-1].split())
    assert int(counts["api-spans.json"]) == 2, stdout  # the request, the send
    assert int(counts["worker-spans.json"]) == 3, stdout
    worker_spans = (tmp_path / "worker-spans.json").read_text()
    for name in ("claim default", "process default", "complete default"):
        assert f'"name": "{name}"' in worker_spans
