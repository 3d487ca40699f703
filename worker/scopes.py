"""The tokens' scopes (DESIGN.md, "Tokens"): which scope a request needs, and which scope a
bearer token grants. Pure, so the gate (worker/api/gate.py) can decide before any body is read,
and below both the API and its console, which share it (the console imports nothing of the
API that mounts it).

- admin (JOBQUEUE_API_TOKEN): everything;
- read (JOBQUEUE_API_READ_TOKEN): every GET, and the console read-only;
- enqueue (JOBQUEUE_API_ENQUEUE_TOKEN): POST /jobs and /jobs/batch, and GET of one job or
  one batch (what a producer needs to follow the jobs it made).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

ADMIN = "admin"
READ = "read"
ENQUEUE = "enqueue"
SETTING = {
    ADMIN: "JOBQUEUE_API_TOKEN",
    READ: "JOBQUEUE_API_READ_TOKEN",
    ENQUEUE: "JOBQUEUE_API_ENQUEUE_TOKEN",
}

API_PREFIX = "/api/"
QUEUE_PREFIX = "/api/v1/queue"
PROBES = frozenset({"/readyz", "/metrics", "/livez", "/healthz"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
_ENQUEUE_POSTS = frozenset({f"{QUEUE_PREFIX}/jobs", f"{QUEUE_PREFIX}/jobs/batch"})
_ONE_OBJECT = re.compile(rf"^{QUEUE_PREFIX}/(jobs|batches)/\d+$")

Scopes = frozenset[str]
EVERY = frozenset({ADMIN})


def token_matches(expected: str, given: str) -> bool:
    # compare bytes: compare_digest refuses non-ASCII str, and headers may carry any latin-1
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogateescape"))


def needed(method: str, path: str, protect_probes: bool) -> Scopes | None:
    """The scopes any one of which lets this request through; None: open to all."""
    path = path.rstrip("/") or "/"
    if path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/"):
        if method in SAFE_METHODS:
            if _ONE_OBJECT.match(path):
                return frozenset({ADMIN, READ, ENQUEUE})
            return frozenset({ADMIN, READ})
        if method == "POST" and path in _ENQUEUE_POSTS:
            return frozenset({ADMIN, ENQUEUE})
        return EVERY
    if protect_probes and path in PROBES:
        return frozenset({ADMIN, READ}) if method in SAFE_METHODS else EVERY
    return None  # the console checks its own sessions; /docs and the schema are public


@dataclass(frozen=True)
class Tokens:
    """The configured tokens by scope; an empty value counts as unset."""

    by_scope: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, admin: str | None, read: str | None, enqueue: str | None) -> Tokens:
        given = ((ADMIN, admin), (READ, read), (ENQUEUE, enqueue))
        return cls(tuple((scope, token) for scope, token in given if token))

    @property
    def enabled(self) -> bool:
        return bool(self.by_scope)

    def scope_of(self, given: str) -> str | None:
        """The scope `given` grants, or None. Every token is compared, so the time taken does
        not say which one was close."""
        found = None
        for scope, token in self.by_scope:
            if token_matches(token, given) and found is None:
                found = scope
        return found


def duplicate_tokens(pairs: Iterable[tuple[str, str | None]]) -> str | None:
    """A message when two scopes share one token (the lower scope would hold the higher)."""
    seen: dict[str, str] = {}
    for scope, token in pairs:
        if not token:
            continue
        if token in seen:
            return f"{SETTING[seen[token]]} and {SETTING[scope]} must be different tokens"
        seen[token] = scope
    return None


def bearer(header: bytes | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    text = header.decode("latin-1")
    kind, _, token = text.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
