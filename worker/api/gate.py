"""The gate every HTTP request passes before the app sees it, in pure ASGI (nothing is read
from the body here): the Host it was sent to, where a browser sent it from, the bearer token
and its scope, and the body's size.

FastAPI reads and parses a body before any dependency runs, so a token check written as a
dependency let a stranger make the API parse 40 MB. Here an answer comes from the headers
alone: 400 for a Host this API does not serve (DNS rebinding), 403 for a cross-site write,
401 or 403 for a token, 413 for a Content-Length over the route's limit. A body that comes
without a length is counted as it is read, and stops at the same limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker import scopes
from worker.api.errors import ErrorResponse
from worker.settings import ApiSettings

AUTH_SCOPE_KEY = "jobqueue.auth"  # the request's scope: "admin", "read", "enqueue" or None
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Room in a single job's request body for the fields around the payload.
ENVELOPE_BYTES = 64 * 1024


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def host_name(header: str) -> str:
    """The name of a Host header, without its port: `[::1]:8001` -> `::1`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclass(frozen=True)
class BodyLimit:
    bytes: int
    setting: str

    def message(self) -> str:
        return (
            f"the request body is larger than this endpoint's limit of {self.bytes} bytes "
            f"({self.setting})"
        )


class BodyTooLarge(HTTPException):
    def __init__(self, limit: BodyLimit) -> None:
        super().__init__(status_code=413, detail=limit.message())


@dataclass(frozen=True)
class GatePolicy:
    tokens: scopes.Tokens
    protect_probes: bool
    allowed_hosts: frozenset[str] | None  # None: any
    allowed_origins: frozenset[str]
    single_job: BodyLimit
    batch: BodyLimit
    other: BodyLimit

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> GatePolicy:
        access = settings.access
        hosts: Iterable[str] | None = [host_name(h) for h in access.api_allowed_hosts] or None
        if hosts is None and is_loopback(settings.api_host):
            hosts = LOOPBACK_NAMES
        return cls(
            tokens=scopes.Tokens.of(
                settings.api_token, settings.api_read_token, settings.api_enqueue_token
            ),
            protect_probes=settings.api_protect_probes,
            allowed_hosts=None if hosts is None or "*" in hosts else frozenset(hosts),
            allowed_origins=frozenset(_netloc(o) for o in access.api_allowed_origins),
            single_job=BodyLimit(
                settings.api_max_payload_bytes + ENVELOPE_BYTES, "JOBQUEUE_API_MAX_PAYLOAD_BYTES"
            ),
            batch=BodyLimit(settings.api_max_batch_bytes, "JOBQUEUE_API_MAX_BATCH_BYTES"),
            other=BodyLimit(settings.api_max_body_bytes, "JOBQUEUE_API_MAX_BODY_BYTES"),
        )

    def body_limit(self, method: str, path: str) -> BodyLimit:
        if method == "POST":
            path = path.rstrip("/")
            if path == f"{scopes.QUEUE_PREFIX}/jobs":
                return self.single_job
            if path == f"{scopes.QUEUE_PREFIX}/jobs/batch":
                return self.batch
        return self.other


def _netloc(origin: str) -> str:
    """`https://Jobs.Example:8443` -> `jobs.example:8443`; a bare host is kept as it is."""
    origin = origin.strip().lower().rstrip("/")
    return origin.split("://", 1)[1] if "://" in origin else origin


class Refusal(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


class Gate:
    def __init__(self, app: ASGIApp, policy: GatePolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method, path = scope["method"], scope["path"]
        try:
            self._check_host(headers)
            self._check_origin(method, headers)
            scope[AUTH_SCOPE_KEY] = self._authorize(method, path, headers)
            limit = self.policy.body_limit(method, path)
            self._check_length(headers, limit)
        except Refusal as refusal:
            await self._refuse(scope, receive, send, refusal)
            return
        await self._serve(scope, receive, send, limit)

    # --- the checks, each on headers alone
    def _check_host(self, headers: Headers) -> None:
        allowed = self.policy.allowed_hosts
        if allowed is None:
            return
        name = host_name(headers.get("host", ""))
        if name not in allowed:
            raise Refusal(
                400,
                f"this API does not answer for host {name!r}; add it to "
                "JOBQUEUE_API_ALLOWED_HOSTS if it is yours",
            )

    def _check_origin(self, method: str, headers: Headers) -> None:
        """A browser's write from another site: refused, whatever it carries (a form post
        needs no token when the API has none, and the console's cookie goes with it)."""
        if method not in UNSAFE_METHODS:
            return
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        own = headers.get("host", "").strip().lower()
        netloc = _netloc(origin) if origin is not None else None
        if netloc is not None and netloc in self.policy.allowed_origins:
            return
        # either signal of another site refuses: a browser sends both, other clients neither
        same_site = site is None or site in ("same-origin", "none")
        if same_site and (netloc is None or netloc == own):
            return
        raise Refusal(
            403,
            f"cross-site {method} refused (Origin {origin or 'unknown'}, Host {own}); "
            "list the origin in JOBQUEUE_API_ALLOWED_ORIGINS to allow it",
        )

    def _authorize(self, method: str, path: str, headers: Headers) -> str | None:
        tokens = self.policy.tokens
        if not tokens.enabled:
            return None
        given = scopes.bearer(headers.get("authorization", "").encode("latin-1"))
        granted = tokens.scope_of(given) if given is not None else None
        wanted = scopes.needed(method, path, self.policy.protect_probes)
        if wanted is None or granted in (wanted or ()):
            return granted
        if granted is None:
            raise Refusal(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        raise Refusal(
            403,
            f"a {granted} token cannot {method} {path}; this needs "
            + " or ".join(f"{s} ({scopes.SETTING[s]})" for s in sorted(wanted)),
        )

    @staticmethod
    def _check_length(headers: Headers, limit: BodyLimit) -> None:
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit.bytes:
            raise Refusal(413, limit.message())

    # --- answering
    async def _serve(self, scope: Scope, receive: Receive, send: Send, limit: BodyLimit) -> None:
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.bytes:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:  # raised where no exception handler caught it
            if started:
                raise
            await self._refuse(scope, receive, send, Refusal(413, str(exc.detail)))

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
        headers: dict[str, Any] = dict(refusal.headers or {})
        if refusal.status == 413:
            headers["Connection"] = "close"  # the rest of the body is not read
        response = ErrorResponse({"detail": refusal.detail}, refusal.status, headers=headers)
        await response(scope, receive, send)
