"""Durations as kubectl shows them. Pure and dependency-free, so the kubectl plugin can use it
without importing the CLI's stack (typer, rich, asyncpg)."""

from __future__ import annotations

from datetime import UTC, datetime


def format_age(seconds: float | None) -> str:
    """kubectl's style: 90s, 3m, 5h, 2d (a unit once there are two of it)."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= 2 * size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def age_of(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    now = now or datetime.now(UTC)
    return format_age((now - moment).total_seconds())
