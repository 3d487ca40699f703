"""The worker's /livez never depends on the database; /readyz does; /healthz is as before."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from tests.fixtures.faultproxy import FaultProxy
from tests.integration.queue_support import eventually, running_worker
from worker.handlers.base import HandlerRegistry


async def test_a_database_outage_fails_readiness_and_never_liveness(pg_dsn: str) -> None:
    url = urlsplit(pg_dsn)
    assert url.hostname is not None and url.port is not None
    proxy = await FaultProxy(url.hostname, url.port).start()
    try:
        settings = {"lease_seconds": 2.0, "heartbeat_seconds": 0.5}
        async with (
            running_worker(proxy.dsn_for(pg_dsn), HandlerRegistry(), **settings) as worker,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker.http.port}") as http,
        ):
            for path in ("/livez", "/readyz", "/healthz"):
                assert (await http.get(path)).status_code == 200, path

            proxy.refuse(3600)  # the database is unreachable from here on
            proxy.cut_all()

            async def unready() -> bool:
                return (await http.get("/readyz")).status_code == 503

            await eventually(unready, what="/readyz to report the outage")
            assert (await http.get("/livez")).status_code == 200
            assert (await http.get("/healthz")).status_code == 200  # unchanged: compatibility

            proxy.refuse(0)

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await eventually(ready, what="/readyz to recover")
    finally:
        await proxy.close()
