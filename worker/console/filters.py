"""The jobs page's filter: parsed from the query string into values the data layer takes, or
into messages naming each field that does not parse (the page marks them; never a 500)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from worker.db.statuses import JOB_STATUSES

STATUSES = JOB_STATUSES
BIGINT_MAX = 2**63 - 1
MAX_TEXT = 200
PAGE_SIZES = (25, 50, 100)


@dataclass
class JobFilter:
    status: str | None = None
    queue: str | None = None
    job_type: str | None = None
    search: str | None = None
    before: int | None = None
    limit: int = 50
    errors: dict[str, str] = field(default_factory=dict)
    # what the user typed, echoed back into the form even when it did not parse
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def search_id(self) -> int | None:
        if self.search is not None and self.search.isdecimal():
            number = int(self.search)
            return number if 1 <= number <= BIGINT_MAX else None
        return None

    def query(self, **changes: object) -> str:
        """This filter's query string, with `changes` applied (None drops a field)."""
        values: dict[str, object] = {
            "status": self.status,
            "queue": self.queue,
            "type": self.job_type,
            "q": self.search,
            "limit": self.limit if self.limit != 50 else None,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def parse_job_id(text: str) -> int | None:
    """A job id from a URL, or None when it cannot be one (the page then says 404)."""
    return int(text) if text.isdecimal() and 1 <= int(text) <= BIGINT_MAX else None


def _text(name: str, value: str, errors: dict[str, str]) -> str | None:
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_TEXT:
        errors[name] = f"at most {MAX_TEXT} characters"
        return None
    if any(ord(ch) < 32 for ch in value):
        errors[name] = "control characters are not allowed"
        return None
    return value


def parse_filter(params: Mapping[str, str]) -> JobFilter:
    out = JobFilter(raw={k: params.get(k, "") for k in ("status", "queue", "type", "q", "before")})
    errors = out.errors

    status = params.get("status", "").strip()
    if status:
        if status in STATUSES:
            out.status = status
        else:
            errors["status"] = "one of " + ", ".join(STATUSES)
    out.queue = _text("queue", params.get("queue", ""), errors)
    out.job_type = _text("type", params.get("type", ""), errors)
    out.search = _text("q", params.get("q", ""), errors)
    if out.search and out.search.isdecimal() and out.search_id is None:
        errors["q"] = "a job id is a whole number from 1 to 2^63-1"
        out.search = None

    before = params.get("before", "").strip()
    if before:
        if before.isdecimal() and 1 <= int(before) <= BIGINT_MAX:
            out.before = int(before)
        else:
            errors["before"] = "not a page cursor"

    limit = params.get("limit", "").strip()
    if limit:
        if limit.isdecimal() and int(limit) in PAGE_SIZES:
            out.limit = int(limit)
        else:
            errors["limit"] = "one of " + ", ".join(map(str, PAGE_SIZES))
    return out
