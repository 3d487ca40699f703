"""What every console handler gets: the request's nonce, the CSRF check, the session check,
and rendering with the security headers and cookies in place."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qsl

import asyncpg
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment

from worker.console.render import SECURITY_HEADERS
from worker.console.security import (
    CSRF_FIELD,
    NONCE_COOKIE,
    SESSION_COOKIE,
    ConsoleKeys,
    new_nonce,
)

PREFIX = "/console"
MAX_FORM_BYTES = 16 * 1024


class PoolState(Protocol):
    """What the console needs of the app it is mounted on (the API's state, `app.state.api`):
    its database pool. A protocol, so that the console imports nothing of the API, which
    mounts it (worker.api.app -> worker.console, one way)."""

    def require_pool(self) -> asyncpg.Pool: ...

    def connection(
        self, acquire_timeout: float | None = None
    ) -> AbstractAsyncContextManager[asyncpg.Connection]: ...


async def app_state(request: Request) -> PoolState:
    state: PoolState = request.app.state.api
    return state


State = Annotated[PoolState, Depends(app_state)]


class LoginRequired(Exception):
    """No valid session cookie while JOBQUEUE_API_TOKEN is set."""


class CsrfRejected(Exception):
    """A POST without the form's CSRF token, or with one that does not match the cookie."""


@dataclass
class ConsoleApp:
    keys: ConsoleKeys
    env: Environment


@dataclass
class Console:
    request: Request
    state: PoolState
    app: ConsoleApp
    nonce: str
    nonce_is_new: bool

    @property
    def csrf(self) -> str:
        return self.app.keys.csrf_token(self.nonce)

    @property
    def secure(self) -> bool:
        return self.request.url.scheme == "https"

    def finish(self, response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if self.nonce_is_new:
            self.set_cookie(response, NONCE_COOKIE, self.nonce)
        return response

    def set_cookie(self, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name, value, path=PREFIX, httponly=True, samesite="strict", secure=self.secure
        )

    def page(self, template: str, *, status_code: int = 200, **context: Any) -> Response:
        html = self.app.env.get_template(template).render(
            prefix=PREFIX,
            csrf=self.csrf,
            csrf_field=CSRF_FIELD,
            login_required=self.app.keys.login_required,
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
    console = _console(request, state)
    if not console.app.keys.session_ok(request.cookies.get(SESSION_COOKIE)):
        raise LoginRequired()
    return console


PublicConsole = Annotated[Console, Depends(public_console)]
SignedIn = Annotated[Console, Depends(signed_in_console)]
