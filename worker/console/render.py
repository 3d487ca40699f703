"""Templates and the small pieces they draw with: ages, counts, and inline SVG charts (no
chart library, no script: they come with the HTML and refresh with it)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from worker.console.charts import throughput_chart
from worker.db.inspect import Count

# What the pages allow: their own scripts and styles only, never framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def since(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return age((datetime.now(UTC) - moment).total_seconds())


def timestamp(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """A wait or a run time, to the precision that matters at its size."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{seconds / 3600:.1f} h"


def iso_time(value: str | datetime | None) -> str:
    """An API-shaped time (ISO 8601 text) as the console's other times read."""
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return timestamp(moment)


def _field(job: Any, name: str) -> Any:
    return job[name] if isinstance(job, dict) else getattr(job, name)


def waited(job: Any) -> float | None:
    """From the job's run_at to its start (the last attempt's), in seconds."""
    started, due = _field(job, "started_at"), _field(job, "run_at")
    return (started - due).total_seconds() if started and due and started >= due else None


def ran(job: Any) -> float | None:
    """From its start to its end, or to now while it runs, in seconds."""
    started = _field(job, "started_at")
    if started is None:
        return None
    return ((_field(job, "finished_at") or datetime.now(UTC)) - started).total_seconds()


def count(value: Count | int | None) -> str:
    if isinstance(value, Count):
        if value.count is None:
            return "?"
        prefix = "~" if value.kind == "estimate" else ""
        suffix = "+" if value.kind == "at_least" else ""
        return f"{prefix}{value.count:,}{suffix}"
    return "-" if value is None else f"{value:,}"


def bounded(value: int, bound: int) -> str:
    return f"{value:,}+" if value >= bound else f"{value:,}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def sparkline(series: Sequence[int], width: int = 120, height: int = 24) -> Markup:
    """Bars, one per minute, scaled to the busiest minute."""
    peak = max(series, default=0)
    step = width / max(len(series), 1)
    bars = []
    for index, value in enumerate(series):
        if value <= 0:
            continue
        bar = max(1.0, height * value / peak)
        bars.append(
            f'<rect x="{index * step:.1f}" y="{height - bar:.1f}" '
            f'width="{max(step - 0.5, 0.5):.1f}" height="{bar:.1f}"/>'
        )
    total = sum(series)
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{total} jobs in the last hour">'
        f"<title>{total} jobs in the last hour, peak {peak}/min</title>{''.join(bars)}</svg>"
    )


def replica_chart(
    decisions: Sequence[dict[str, Any]], now: datetime, width: int = 640, height: int = 120
) -> Markup:
    """Replicas over time as a step line: each decision moves it from from_ to to_replicas;
    a dot marks each decision, with its time, change and reason as the dot's tooltip."""
    if not decisions:
        return Markup("")
    origin = decisions[0]["decided_at"].timestamp()
    span = max(now.timestamp() - origin, 1.0)
    top = max(1, max(max(d["to_replicas"], d["from_replicas"]) for d in decisions))
    pad = 16
    x_scale = (width - 2 * pad) / span
    y_scale = (height - 2 * pad) / top

    def y(replicas: int) -> float:
        return height - pad - y_scale * replicas

    level = y(decisions[0]["from_replicas"])
    points = [f"{pad:.1f},{level:.1f}"]
    dots = []
    for decision in decisions:
        at = pad + x_scale * (decision["decided_at"].timestamp() - origin)
        to = y(decision["to_replicas"])
        points.append(f"{at:.1f},{level:.1f} {at:.1f},{to:.1f}")
        level = to
        label = html.escape(
            f"{decision['decided_at'].astimezone(UTC).isoformat(' ', 'seconds')}: "
            f"{decision['from_replicas']} to {decision['to_replicas']} ({decision['reason']})"
        )
        dots.append(f'<circle cx="{at:.1f}" cy="{to:.1f}" r="3"><title>{label}</title></circle>')
    points.append(f"{width - pad:.1f},{level:.1f}")
    axis = f'<text x="2" y="{y(top) + 4:.1f}">{top}</text><text x="2" y="{y(0) + 4:.1f}">0</text>'
    return Markup(
        f'<svg class="replicas" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="replicas over time">{axis}'
        f'<polyline points="{" ".join(points)}"/>{"".join(dots)}</svg>'
    )


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("worker.console", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        path_part=lambda value: quote(str(value), safe=""),  # one URL path segment, / included
        age=age,
        duration=duration,
        iso_time=iso_time,
        waited=waited,
        ran=ran,
        since=since,
        timestamp=timestamp,
        count=count,
        pretty_json=pretty_json,
    )
    env.globals.update(
        sparkline=sparkline,
        replica_chart=replica_chart,
        bounded=bounded,
        throughput_chart=throughput_chart,
    )
    return env
