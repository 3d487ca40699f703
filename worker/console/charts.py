"""The overview's throughput chart: jobs finished per minute over the last hour, for every queue
together, drawn as inline SVG with its axes labelled (the per-queue sparklines beside each
row have no room for labels). No script and no chart library: it comes with the HTML."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

WIDTH, HEIGHT = 720, 160
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 28  # room for the axes' labels


def nice_top(peak: int) -> int:
    """The y axis' top: 1, 2 or 5 times a power of ten, at or above the peak."""
    power = 1
    while True:
        for factor in (1, 2, 5):
            if power * factor >= peak:
                return power * factor
        power *= 10


def throughput_chart(series: Sequence[int]) -> Markup:
    """One bar per minute, oldest first; `series` holds the last len(series) minutes."""
    minutes = max(len(series), 1)
    peak = max(series, default=0)
    top = nice_top(max(peak, 1))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / minutes
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>',
    ]
    for value in (top, top // 2) if top > 1 else (top,):
        y = TOP + plot_h - plot_h * value / top
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
        )
        parts.append(f'<text class="y" x="{LEFT - 6}" y="{y + 4:.1f}">{value:,}</text>')
    parts.append(f'<text class="y" x="{LEFT - 6}" y="{TOP + plot_h + 4}">0</text>')
    for minutes_ago in (minutes, minutes // 2, 0):
        x = LEFT + plot_w * (minutes - minutes_ago) / minutes
        label = "now" if minutes_ago == 0 else f"{minutes_ago} min ago"
        anchor = "x end" if minutes_ago == 0 else "x"  # the last label ends at the axis' end
        parts.append(f'<text class="{anchor}" x="{x:.1f}" y="{HEIGHT - 8}">{label}</text>')
    for index, value in enumerate(series):
        if value <= 0:
            continue
        bar = max(1.0, plot_h * value / top)
        minutes_ago = minutes - index
        parts.append(
            f'<rect x="{LEFT + index * step + 0.5:.1f}" y="{TOP + plot_h - bar:.1f}" '
            f'width="{max(step - 1, 0.5):.1f}" height="{bar:.1f}">'
            f"<title>{value:,} jobs in the minute {minutes_ago} min ago</title></rect>"
        )
    total = sum(series)
    return Markup(
        f'<svg class="throughput" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="Jobs finished per minute, last hour: '
        f'{total:,} in all, at most {peak:,} in a minute">{"".join(parts)}</svg>'
    )


def total_series(per_queue: Sequence[Sequence[int]], minutes: int) -> list[int]:
    """Every queue's minutes added up."""
    totals = [0] * minutes
    for series in per_queue:
        for index, value in enumerate(series):
            totals[index] += value
    return totals
