"""Two answers that left the API in a shape of their own, made like every other error: a JSON
`detail` that names what is wrong.

- Starlette's body limit answers a body over a route's limit, when its Content-Length says so
  up front, with a plain-text "Content Too Large"; the same limit found while reading answers
  JSON. The middleware turns the first into the second.
- A POST without `Content-Type: application/json` (curl -d sends a form type) was parsed as
  no body at all and got "Input should be a valid dictionary"; it now gets a 415 that says
  which header to send."""

from __future__ import annotations

import json
from typing import Any

from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
TOO_LARGE = "the request body is larger than this endpoint's limit"  # as errors.py says it


def _error(status: int, detail: Any) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return headers, body


def _content_type(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return None


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


class JsonErrorsMiddleware:
    def __init__(self, app: ASGIApp, json_prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = json_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if scope["method"] in JSON_BODY_METHODS and _has_body(scope):
            kind = _content_type(scope)
            if kind is None or not (kind == "application/json" or kind.endswith("+json")):
                detail = [
                    {
                        "loc": ["header", "content-type"],
                        "msg": f"the body must be JSON: send 'Content-Type: application/json' "
                        f"(got {kind or 'none'})",
                        "type": "unsupported_media_type",
                    }
                ]
                headers, body = _error(415, detail)
                await send({"type": "http.response.start", "status": 415, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        rewriting = False

        async def send_json(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 413:
                kinds = [v for k, v in message.get("headers", []) if k == b"content-type"]
                if kinds and kinds[0].startswith(b"text/plain"):
                    rewriting = True
                    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
                    detail = (
                        f"the request body is larger than this endpoint's limit of {limit} bytes"
                    )
                    headers, body = _error(413, detail)
                    await send({**message, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
            if rewriting:  # the plain-text body that was replaced
                return
            await send(message)

        await self.app(scope, receive, send_json)
