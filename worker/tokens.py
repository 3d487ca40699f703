"""Comparing a secret someone sent with the one configured, for the API and its console."""

from __future__ import annotations

import hmac


def token_matches(expected: str, given: str) -> bool:
    # compare bytes: compare_digest refuses non-ASCII str, and headers may carry any latin-1
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogateescape"))
