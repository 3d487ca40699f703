"""Running the REST API in-process for tests: the real app, its lifespan and a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process, wait_until
from worker.api.app import create_app
from worker.settings import Settings

JOBS = "/api/v1/queue/jobs"

# The seed README's example body, as its curl example sends it.
SEED_JOB: dict[str, Any] = {
    "job_type": "emails",
    "payload": {"to": "user@example.com", "subject": "Hi", "body": "Hello"},
    "queue_name": "default",
    "max_tries": 3,
}


def api_settings(dsn: str, **overrides: Any) -> Settings:
    """Explicit values for everything the API reads, so the environment cannot leak in."""
    values: dict[str, Any] = {
        "db_url": dsn,
        "api_token": None,
        "api_protect_probes": False,
        "allow_unknown_job_types": False,
        "handler_modules": [],
        "api_pool_min": 1,
        "api_pool_max": 4,
        "api_max_batch": 1000,
        "api_max_payload_bytes": 256 * 1024,
        "api_max_batch_bytes": 32 * 1024 * 1024,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def api_client(
    settings: Settings, headers: Mapping[str, str] | Mapping[bytes, bytes] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.api, settings.dsn)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as client:
            yield client


@dataclass
class ApiProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def api_process(
    dsn: str, log_path: Path, *, cwd: Path | None = None, **env: str
) -> Iterator[ApiProcess]:
    """A real `jobqueue api` (uvicorn) process on a free port, stopped (if still running)
    on the way out. `cwd` (with PYTHONPATH) runs another tree's code, e.g. an older release."""
    port = free_port()
    environment = {
        **os.environ,
        "DB_URL": dsn,
        "JOBQUEUE_API_HOST": "127.0.0.1",
        "JOBQUEUE_API_PORT": str(port),
        "JOBQUEUE_API_TOKEN": "",
        **env,
    }
    proc = start_logged([sys.executable, "-m", "worker", "api"], log_path, env=environment, cwd=cwd)
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"jobqueue api exited:\n{log_tail(log_path)}")
        try:
            return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(healthy, timeout=30, what="jobqueue api to answer /healthz")
        yield ApiProcess(base_url, proc, log_path)
    finally:
        stop_process(proc)
