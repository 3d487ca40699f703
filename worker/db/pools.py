"""A pool whose every acquire has a deadline, including the ones asyncpg makes itself for
`pool.fetch(...)` and the like: a full pool answers TimeoutError (a 503 with Retry-After in
the API) instead of queueing requests without end."""

from __future__ import annotations

import inspect
from typing import Any

import asyncpg

# asyncpg.create_pool's keyword defaults, which Pool itself requires spelled out
_POOL_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(asyncpg.create_pool).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    and parameter.default is not inspect.Parameter.empty
}


class TimedPool(asyncpg.Pool):
    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


def timed_pool(dsn: str, *, acquire_timeout: float, **kwargs: Any) -> TimedPool:
    """As asyncpg.create_pool (await it to connect), with a deadline on every acquire."""
    return TimedPool(dsn, acquire_timeout=acquire_timeout, **{**_POOL_DEFAULTS, **kwargs})
