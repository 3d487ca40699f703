"""The console's actions (POST, with a CSRF token): login and logout, retry or cancel a job,
bulk retry by filter, pause or resume a queue. Each action first answers with a page that
asks for confirmation; only the confirmed form acts, and only for an admin session."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from worker.console.context import PREFIX, Admin, Console, PublicConsole
from worker.console.filters import parse_filter, parse_job_id
from worker.console.security import (
    MAX_SECRET_CHARS,
    SESSION_COOKIE,
    new_session_secret,
    session_key,
)
from worker.db import console as db
from worker.db.console_sessions import end_session, open_session
from worker.db.errors import JobNotFound, JobStateConflict
from worker.db.jobs import cancel_job, retry_job
from worker.job_checks import queue_name_problem

CONFIRMED = "confirmed"


def safe_next(value: str | None) -> str:
    """Only a console path: never an open redirect to another site."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX


def login_page(
    console: Console, *, next_page: str | None, message: str | None = None, status: int = 200
) -> Response:
    return console.page("login.html", status_code=status, message=message, next=next_page)


async def show_login(console: PublicConsole) -> Response:
    if not console.app.keys.login_required:
        return console.redirect(PREFIX)
    return login_page(console, next_page=safe_next(console.request.query_params.get("next")))


async def login(console: PublicConsole) -> Response:
    form = await console.form()
    app = console.app
    if not app.keys.login_required:
        return console.redirect(PREFIX)
    next_page = safe_next(form.get("next"))
    client = console.request.client
    address = client.host if client else "unknown"
    wait = app.limiter.retry_after(address)
    if wait is not None:
        response = login_page(
            console,
            next_page=next_page,
            message=f"Too many wrong tokens from {address}: try again in {wait} s.",
            status=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    scope = app.keys.scope_of(form.get("token", ""))
    if scope is None:
        app.limiter.failed(address)
        return login_page(
            console,
            next_page=next_page,
            message="That token is not JOBQUEUE_API_TOKEN or JOBQUEUE_API_READ_TOKEN.",
            status=401,
        )
    secret = new_session_secret()
    await open_session(
        console.state.require_pool(),
        session_key(secret),
        scope,
        app.keys.token_mark(scope),
        app.session_seconds,
    )
    response = console.redirect(next_page)
    console.set_cookie(response, SESSION_COOKIE, secret, max_age=int(app.session_seconds))
    return response


async def logout(console: PublicConsole) -> Response:
    """Ends the session for good: its row goes, so the cookie opens nothing anywhere."""
    await console.form()
    secret = console.request.cookies.get(SESSION_COOKIE)
    if secret and len(secret) <= MAX_SECRET_CHARS:
        await end_session(console.state.require_pool(), session_key(secret))
    response = console.redirect(f"{PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def confirm(
    console: Console,
    *,
    question: str,
    detail: str | None,
    action: str,
    fields: dict[str, Any],
    back: str,
) -> Response:
    return console.page(
        "confirm.html", question=question, detail=detail, action=action, fields=fields, back=back
    )


async def _job_action(job_id: str, console: Console, verb: str) -> Response:
    form = await console.form()
    number = parse_job_id(job_id)
    pool = console.state.require_pool()
    job = await db.job_row(pool, number) if number is not None else None
    if job is None or number is None:
        return console.page("not_found.html", status_code=404, what=f"job {job_id}")
    url = f"{PREFIX}/jobs/{number}"
    if form.get(CONFIRMED) != "yes":
        return confirm(
            console,
            question=f"{verb.capitalize()} job {number}?",
            detail=f"{job['job_type']} in queue {job['queue_name']}, now {job['status']}.",
            action=f"{url}/{verb}",
            fields={},
            back=url,
        )
    try:
        await (retry_job if verb == "retry" else cancel_job)(pool, number)
    except JobNotFound:
        return console.page("not_found.html", status_code=404, what=f"job {job_id}")
    except JobStateConflict as exc:
        return console.page("conflict.html", status_code=409, message=str(exc), back=url)
    return console.redirect(f"{url}?done={'retried' if verb == 'retry' else 'cancelled'}")


async def retry(job_id: str, console: Admin) -> Response:
    return await _job_action(job_id, console, "retry")


async def cancel(job_id: str, console: Admin) -> Response:
    return await _job_action(job_id, console, "cancel")


async def bulk_retry(console: Admin) -> Response:
    form = await console.form()
    spec = parse_filter({"queue": form.get("queue", ""), "type": form.get("type", "")})
    back = f"{PREFIX}/jobs?{spec.query(status='failed', q=None)}"
    if spec.errors:
        return console.page("conflict.html", status_code=422, message=str(spec.errors), back=back)
    pool = console.state.require_pool()
    if form.get(CONFIRMED) != "yes":
        matched = await db.count_failed(pool, queue_name=spec.queue, job_type=spec.job_type)
        scope = ", ".join(
            f"{name} {value}"
            for name, value in (("queue", spec.queue), ("type", spec.job_type))
            if value
        )
        return confirm(
            console,
            question=f"Retry {'at least ' if matched >= db.COUNT_BOUND else ''}{matched:,} "
            "failed jobs?",
            detail=f"Every failed job{' with ' + scope if scope else ''} goes back to pending.",
            action=f"{PREFIX}/jobs/retry",
            fields={"queue": spec.queue or "", "type": spec.job_type or ""},
            back=back,
        )
    n = await db.retry_failed(pool, queue_name=spec.queue, job_type=spec.job_type)
    return console.redirect(f"{back}&{urlencode({'done': 'bulk-retried', 'n': n})}")


async def _queue_action(
    name: str, console: Console, paused: bool, form: dict[str, str] | None = None
) -> Response:
    form = form if form is not None else await console.form()
    name = name.strip()
    verb = "pause" if paused else "resume"
    if queue_name_problem(name):  # never a path elsewhere: a name holds no '/' or '..'
        return console.page("not_found.html", status_code=404, what=f"queue {name!r}")
    if form.get(CONFIRMED) != "yes":
        return confirm(
            console,
            question=f"{verb.capitalize()} queue {name}?",
            detail="Workers stop claiming its jobs; running ones finish."
            if paused
            else "Workers claim its jobs again.",
            action=f"{PREFIX}/queues/{quote(name, safe='')}/{verb}",
            fields={},
            back=PREFIX,
        )
    await db.set_queue_paused(console.state.require_pool(), name, paused)
    done = "paused" if paused else "resumed"
    return console.redirect(f"{PREFIX}?{urlencode({'done': done, 'q': name})}")


async def pause(name: str, console: Admin) -> Response:
    return await _queue_action(name, console, True)


async def resume(name: str, console: Admin) -> Response:
    return await _queue_action(name, console, False)


async def pause_by_name(console: Admin) -> Response:
    """The overview's "pause a queue by name", for a queue that has no job yet."""
    form = await console.form()
    return await _queue_action(form.get("name", ""), console, True, form)


def actions_router() -> APIRouter:
    router = APIRouter()
    router.add_api_route("/login", show_login, methods=["GET"])
    router.add_api_route("/login", login, methods=["POST"])
    router.add_api_route("/logout", logout, methods=["POST"])
    router.add_api_route("/jobs/retry", bulk_retry, methods=["POST"])
    router.add_api_route("/jobs/{job_id}/retry", retry, methods=["POST"])
    router.add_api_route("/jobs/{job_id}/cancel", cancel, methods=["POST"])
    router.add_api_route("/queues/pause", pause_by_name, methods=["POST"])
    router.add_api_route("/queues/{name}/pause", pause, methods=["POST"])
    router.add_api_route("/queues/{name}/resume", resume, methods=["POST"])
    return router
