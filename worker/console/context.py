"""What every console handler gets: the request's nonce, the CSRF check, the session check
(and its scope), and rendering with the security headers and cookies in place."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qsl

import asyncpg
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment

from worker.console.login_limit import LoginLimiter
from worker.console.render import SECURITY_HEADERS
from worker.console.security import (
    CSRF_FIELD,
    MAX_SECRET_CHARS,
    NONCE_COOKIE,
    SESSION_COOKIE,
    ConsoleKeys,
    new_nonce,
    session_key,
)
from worker.db.console_sessions import find_session
from worker.scopes import ADMIN

PREFIX = "/console"
MAX_FORM_BYTES = 16 * 1024


class PoolState(Protocol):
    """What the console needs of the app it is mounted on (the API's state, `app.state.api`):
    its database pools. A protocol, so that the console imports nothing of the API, which
    mounts it (worker.api.app -> worker.console, one way)."""

    def require_pool(self) -> asyncpg.Pool: ...

    def require_read_pool(self) -> asyncpg.Pool: ...

    def read_connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]: ...


async def app_state(request: Request) -> PoolState:
    # async: FastAPI would run a plain function in a worker thread, on every request
    state: PoolState = request.app.state.api
    return state


State = Annotated[PoolState, Depends(app_state)]


class LoginRequired(Exception):
    """No valid session cookie while JOBQUEUE_API_TOKEN is set."""


class CsrfRejected(Exception):
    """A POST without the form's CSRF token, or with one that does not match the cookie."""


class ScopeRefused(Exception):
    """An action asked of a read-only session."""


@dataclass
class ConsoleApp:
    keys: ConsoleKeys
    env: Environment
    limiter: LoginLimiter
    session_seconds: float = 8 * 3600.0
    secure_cookies: bool = False  # Secure even when the request looks like plain HTTP


@dataclass
class Console:
    request: Request
    state: PoolState
    app: ConsoleApp
    nonce: str
    nonce_is_new: bool
    scope: str = ADMIN  # of the session; everyone's when no token is set

    @property
    def csrf(self) -> str:
        return self.app.keys.csrf_token(self.nonce)

    @property
    def can_act(self) -> bool:
        return self.scope == ADMIN

    @property
    def secure(self) -> bool:
        # the scheme is https behind a TLS proxy listed in JOBQUEUE_API_FORWARDED_ALLOW_IPS
        return self.app.secure_cookies or self.request.url.scheme == "https"

    def finish(self, response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if self.nonce_is_new:
            self.set_cookie(response, NONCE_COOKIE, self.nonce)
        return response

    def set_cookie(
        self, response: Response, name: str, value: str, max_age: int | None = None
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )

    def page(self, template: str, *, status_code: int = 200, **context: Any) -> Response:
        html = self.app.env.get_template(template).render(
            prefix=PREFIX,
            csrf=self.csrf,
            csrf_field=CSRF_FIELD,
            login_required=self.app.keys.login_required,
            can_act=self.can_act,
            scope=self.scope,
            path=self.request.url.path,
            **context,
        )
        return self.finish(HTMLResponse(html, status_code=status_code))

    def redirect(self, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303))

    async def form(self) -> dict[str, str]:
        """The POSTed form, once its CSRF token matched this browser's nonce cookie."""
        body = b""
        async for chunk in self.request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise CsrfRejected("form too large")
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        cookie = self.request.cookies.get(NONCE_COOKIE)
        if self.nonce_is_new or not self.app.keys.csrf_ok(cookie, fields.get(CSRF_FIELD)):
            raise CsrfRejected("missing or wrong CSRF token")
        return fields


def _console(request: Request, state: PoolState) -> Console:
    app: ConsoleApp = request.app.state.console
    nonce = request.cookies.get(NONCE_COOKIE)
    fresh = not nonce or len(nonce) > 64
    return Console(request, state, app, new_nonce() if fresh else str(nonce), fresh)


async def public_console(request: Request, state: State) -> Console:
    return _console(request, state)


async def signed_in_console(request: Request, state: State) -> Console:
    """A session that is open, not expired, and opened with today's token; its scope."""
    console = _console(request, state)
    keys = console.app.keys
    if not keys.login_required:
        return console
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret or len(secret) > MAX_SECRET_CHARS:
        raise LoginRequired()
    stored = await find_session(state.require_pool(), session_key(secret))
    if stored is None or not keys.mark_ok(stored.scope, stored.token_mark):
        raise LoginRequired()
    console.scope = stored.scope
    return console


async def admin_console(request: Request, state: State) -> Console:
    console = await signed_in_console(request, state)
    if not console.can_act:
        raise ScopeRefused()
    return console


PublicConsole = Annotated[Console, Depends(public_console)]
SignedIn = Annotated[Console, Depends(signed_in_console)]
# the actions: an admin session (or no token at all)
Admin = Annotated[Console, Depends(admin_console)]
