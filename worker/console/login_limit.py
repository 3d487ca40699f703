"""Console logins per client address: after `per_minute` wrong tokens within a minute, an
address gets 429 with Retry-After until the oldest of them is a minute old. Per API process;
a few replicas multiply the rate by their number, which still makes guessing a 40-character
token hopeless. The client address is the peer's, or X-Forwarded-For's from a proxy listed
in JOBQUEUE_API_FORWARDED_ALLOW_IPS."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000  # the table's bound: the addresses with the most recent failures


class LoginLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.get(address)
        if failures is None:
            return deque()
        horizon = self._clock() - WINDOW_SECONDS
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return failures

    def retry_after(self, address: str) -> int | None:
        """Seconds until this address may try again, or None when it may now."""
        failures = self._recent(address)
        if len(failures) < self.per_minute:
            return None
        return max(1, math.ceil(failures[0] + WINDOW_SECONDS - self._clock()))

    def failed(self, address: str) -> None:
        failures = self._recent(address)
        failures.append(self._clock())
        self._failures[address] = failures
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)
