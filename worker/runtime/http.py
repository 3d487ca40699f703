"""A tiny asyncio HTTP server for health and /metrics (no framework needed), used by the
worker and the controller.

- /livez: is the process alive? Never depends on the database: an outage must not make the
  kubelet restart every pod (a restart cannot bring the database back).
- /readyz: can it do its work now? Depends on the database (through `ready()`).
- /healthz: the full status, as before, kept for compatibility."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


Status = Callable[[], dict[str, Any]]


def _alive() -> dict[str, Any]:
    # answering at all proves the event loop runs
    return {"healthy": True}


class HealthServer:
    """GET /healthz answers `health()` as JSON (503 when it says healthy=False), /readyz
    `ready()` (default: `health()`), /livez `live()` (default: always alive); GET /metrics
    answers the Prometheus registry."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Status,
        *,
        ready: Status | None = None,
        live: Status | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._routes: dict[str, Status] = {
            "/healthz": health,
            "/readyz": ready or health,
            "/livez": live or _alive,
        }
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def _respond(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        status = self._routes.get(path)
        if status is not None:
            body = status()
            code = 200 if body.get("healthy", True) else 503
            return code, "application/json", json.dumps(body).encode()
        return 404, "text/plain", b"not found\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method not in ("GET", "HEAD"):
                code, ctype, body = 405, "text/plain", b"method not allowed\n"
            else:
                code, ctype, body = self._respond(target.split("?", 1)[0])
            header = (
                f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(header.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        except Exception:  # one bad request must not take the worker down
            log.exception("health server request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
