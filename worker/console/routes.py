"""Mounts the console on the API app: its assets, its pages and actions, and the answers to
a missing session (the login page) and a bad CSRF token (403)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from worker.console.actions import actions_router
from worker.console.context import (
    PREFIX,
    ConsoleApp,
    CsrfRejected,
    LoginRequired,
    ScopeRefused,
)
from worker.console.login_limit import LoginLimiter
from worker.console.pages import fallback_router, pages_router
from worker.console.render import SECURITY_HEADERS, environment
from worker.console.security import ConsoleKeys
from worker.scopes import Tokens
from worker.settings import ApiSettings

STATIC = Path(__file__).parent / "static"


async def _login_required(request: Request, exc: Exception) -> Response:
    login = f"{PREFIX}/login?next={quote(request.url.path)}"
    if request.headers.get("HX-Request"):  # a poll from an open page: send it to log in
        return Response(status_code=401, headers={"HX-Redirect": login})
    if request.method != "GET":
        return HTMLResponse("Log in first.", status_code=401, headers=SECURITY_HEADERS)
    return RedirectResponse(login, status_code=303)


async def _csrf_rejected(request: Request, exc: Exception) -> Response:
    console: ConsoleApp = request.app.state.console
    html = console.env.get_template("forbidden.html").render(
        prefix=PREFIX, login_required=console.keys.login_required, reason=str(exc)
    )
    return HTMLResponse(html, status_code=403, headers=SECURITY_HEADERS)


async def _scope_refused(request: Request, exc: Exception) -> Response:
    reason = "this session is read-only: log in with JOBQUEUE_API_TOKEN to act"
    return await _csrf_rejected(request, Exception(reason))


def install_console(app: FastAPI, settings: ApiSettings) -> None:
    access = settings.access
    app.state.console = ConsoleApp(
        ConsoleKeys(
            settings.api_token,
            settings.api_read_token,
            closed=Tokens.of(
                settings.api_token, settings.api_read_token, settings.api_enqueue_token
            ).enabled,
        ),
        environment(),
        LoginLimiter(access.console_login_per_minute),
        session_seconds=access.console_session_seconds,
        secure_cookies=access.console_secure_cookies,
    )
    # the assets first: the console's fallback route would otherwise answer for them
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
    for router in (actions_router(), pages_router(), fallback_router()):
        app.include_router(router, prefix=PREFIX, include_in_schema=False)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
    app.add_exception_handler(ScopeRefused, _scope_refused)
