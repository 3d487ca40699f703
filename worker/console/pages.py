"""The console's pages (GET): overview, jobs, one job, workers, schedules, scaling."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from worker.console.charts import total_series
from worker.console.context import SignedIn
from worker.console.filters import STATUSES, JobFilter, parse_filter, parse_job_id
from worker.console.overview import load_overview
from worker.console.render import ran, waited
from worker.db import attempts, console_stats, inspect, workflows
from worker.db import console as db
from worker.db.jobs import Job

# Fields the job page shows in its own sections; any other column is listed as it is.
SHOWN_FIELDS = {
    "id", "queue_name", "job_type", "payload", "status", "priority", "run_at", "attempts",
    "max_tries", "last_error", "result", "idempotency_key", "created_at", "started_at",
    "finished_at", "worker_id", "lease_expires_at", "timeout_seconds", "unique_key",
    "concurrency_key", "batch_id", "progress", "progress_message", "snoozes", "traceparent",
    "depends_on",
}  # fmt: skip
# The runtime's bookkeeping, which says nothing to a person reading a job.
INTERNAL_FIELDS = {"has_dependents", "has_waiters", "dependencies_left"}
SCALING_TABLE_ROWS = 25
SCALING_WINDOWS = {"1": 3600, "6": 6 * 3600, "24": 86400, "168": 7 * 86400}
DONE_NOTICES = {
    "retried": "Job retried: it is pending again.",
    "cancelled": "Job cancelled.",
    "bulk-retried": "{n} failed jobs retried.",
    "paused": "Queue {queue} paused.",
    "resumed": "Queue {queue} resumed.",
}


def notice(request: Request) -> str | None:
    template = DONE_NOTICES.get(request.query_params.get("done", ""))
    if template is None:
        return None
    n = request.query_params.get("n", "0")
    return template.format(n=n if n.isdecimal() else "0", queue=request.query_params.get("q", ""))


async def overview(console: SignedIn) -> Response:
    context = await _overview_context(console, totals=True)
    return console.page("overview.html", **context, active="overview")


async def overview_queues(console: SignedIn) -> Response:
    """The overview's table body, which the page polls for every few seconds."""
    return console.page("queue_rows.html", **await _overview_context(console))


async def _overview_context(console: SignedIn, totals: bool = False) -> dict[str, Any]:
    # one short read-only snapshot per request, released before rendering: an open page
    # holds no connection between its polls
    async with (
        console.state.read_connection() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        data = await load_overview(conn)
        by_type = await console_stats.job_type_totals(conn) if totals else []
    minutes = db.THROUGHPUT_MINUTES
    return {
        "overview": data,
        "by_type": by_type,
        "totals_bound": console_stats.TOTALS_BOUND,
        "throughput": total_series([q.throughput for q in data.queues], minutes),
        "notice": notice(console.request),
    }


async def jobs(console: SignedIn) -> Response:
    spec = parse_filter(console.request.query_params)
    pool = console.state.require_read_pool()
    found: list[Any] = []
    next_before = None
    if not spec.errors:
        if spec.search is not None:
            found = await _search(console, spec)
        else:
            found = await inspect.list_jobs(
                pool,
                statuses=[spec.status] if spec.status else None,
                queue_name=spec.queue,
                job_type=spec.job_type,
                before_id=spec.before,
                limit=spec.limit,
            )
            if len(found) == spec.limit:
                next_before = found[-1].id
    failed_matching = None
    if spec.status == "failed" and not spec.errors and spec.search is None:
        failed_matching = await db.count_failed(pool, queue_name=spec.queue, job_type=spec.job_type)
    return console.page(
        "jobs.html",
        status_code=422 if spec.errors else 200,
        spec=spec,
        jobs=found,
        next_before=next_before,
        statuses=STATUSES,
        failed_matching=failed_matching,
        count_bound=db.COUNT_BOUND,
        notice=notice(console.request),
        active="jobs",
    )


async def _search(console: SignedIn, spec: JobFilter) -> list[Any]:
    pool = console.state.require_read_pool()
    assert spec.search is not None
    ids = [spec.search_id] if spec.search_id is not None else []
    ids += await db.job_ids_by_key(pool, spec.search)
    rows = [await db.job_row(pool, job_id) for job_id in dict.fromkeys(ids)]
    return [Job.from_record(row) for row in rows if row is not None]


async def job_page(job_id: str, console: SignedIn) -> Response:
    number = parse_job_id(job_id)
    pool = console.state.require_read_pool()
    job = await db.job_row(pool, number) if number is not None else None
    if job is None:
        return console.page("not_found.html", status_code=404, what=f"job {job_id}")
    batch = await db.batch_counts(pool, job["batch_id"]) if job.get("batch_id") else None
    extra = {k: v for k, v in job.items() if k not in SHOWN_FIELDS | INTERNAL_FIELDS}
    names = await console_stats.worker_names(pool, [job["worker_id"]] if job["worker_id"] else [])
    return console.page(
        "job.html",
        job=job,
        batch=batch,
        extra=extra,
        depends_on=await workflows.dependencies_of(pool, job["id"]),
        worker_name=names.get(str(job["worker_id"])),
        timings={"waited": waited(job), "ran": ran(job)},
        errors=await attempts.job_errors(pool, job["id"]),
        logs=await attempts.job_logs(pool, job["id"]),
        notice=notice(console.request),
        message=None,
        active="jobs",
    )


async def job_live(job_id: str, console: SignedIn) -> Response:
    """The job's status badge and progress, which its page polls for while it is not done."""
    number = parse_job_id(job_id)
    job = (
        await db.job_row(console.state.require_read_pool(), number) if number is not None else None
    )
    if job is None:
        return console.page("not_found.html", status_code=404, what=f"job {job_id}")
    return console.page("job_fragment.html", job=job)


async def workers(console: SignedIn) -> Response:
    return console.page("workers.html", **await _workers_context(console), active="workers")


async def workers_rows(console: SignedIn) -> Response:
    return console.page("worker_rows.html", **await _workers_context(console))


async def _workers_context(console: SignedIn) -> dict[str, Any]:
    found = await inspect.live_workers(console.state.require_read_pool())
    return {"workers": found, "now": datetime.now(UTC)}


async def schedules(console: SignedIn) -> Response:
    found = await db.schedules(console.state.require_read_pool())
    return console.page("schedules.html", schedules=found, active="schedules")


async def scaling(console: SignedIn) -> Response:
    hours = console.request.query_params.get("hours", "24")
    error = None
    if hours not in SCALING_WINDOWS:
        error = "one of " + ", ".join(SCALING_WINDOWS)
        hours = "24"
    decisions = await db.scaling_decisions(
        console.state.require_read_pool(), within_seconds=SCALING_WINDOWS[hours]
    )
    deployments: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for decision in decisions:
        deployments.setdefault((decision["namespace"], decision["deployment"]), []).append(decision)
    return console.page(
        "scaling.html",
        status_code=422 if error else 200,
        deployments=deployments,
        hours=hours,
        windows=SCALING_WINDOWS,
        hours_error=error,
        table_rows=SCALING_TABLE_ROWS,
        now=datetime.now(UTC),
        active="scaling",
    )


async def not_found(rest: str, console: SignedIn) -> Response:
    return console.page("not_found.html", status_code=404, what=f"the page /console/{rest}")


def pages_router() -> APIRouter:
    router = APIRouter()
    get = router.add_api_route
    get("", overview, methods=["GET"])
    get("/", overview, methods=["GET"])
    get("/overview/queues", overview_queues, methods=["GET"])
    get("/jobs", jobs, methods=["GET"])
    get("/jobs/{job_id}", job_page, methods=["GET"])
    get("/jobs/{job_id}/live", job_live, methods=["GET"])
    get("/workers", workers, methods=["GET"])
    get("/workers/rows", workers_rows, methods=["GET"])
    get("/schedules", schedules, methods=["GET"])
    get("/scaling", scaling, methods=["GET"])
    return router


def fallback_router() -> APIRouter:
    """Registered last, so that only unknown console paths reach it."""
    router = APIRouter()
    router.add_api_route("/{rest:path}", not_found, methods=["GET"])
    return router
