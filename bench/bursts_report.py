"""The report of many bursts per scaler (bench/bench_vs_keda.py): the first job's distribution,
the other figures' medians, where the seconds to the first job went, and ratios of ours over
each other scaler, from the same run."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from bench import common
from bench.burst_timeline import PHASES
from bench.l4_pools import Burst

Figure = Callable[[Burst], float | int | None]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q of the values at or below."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def _values(bursts: Sequence[Burst], figure: Figure) -> list[float]:
    return [float(v) for v in (figure(b) for b in bursts) if v is not None]


def _median(bursts: Sequence[Burst], figure: Figure) -> float | None:
    values = _values(bursts, figure)
    return statistics.median(values) if values else None


def first_job(bursts: Sequence[Burst]) -> tuple[float, float, float] | None:
    values = _values(bursts, lambda b: b.first_started)
    if not values:
        return None
    return percentile(values, 0.5), percentile(values, 0.95), max(values)


FIGURES: list[tuple[str, Figure, str]] = [
    ("time to first scale-up (p50)", lambda b: b.first_scale_up, "s"),
    ("time to drain (p50)", lambda b: b.drained, "s"),
    ("time back to zero (p50)", lambda b: b.back_to_zero, "s"),
    ("  of which after the last job (p50)", lambda b: b.zero_after_last_job, "s"),
    ("replica-seconds (p50)", lambda b: b.replica_seconds, ""),
    ("peak replicas (p50)", lambda b: b.peak_replicas, ""),
    ("scaler's DB connections (peak, p50)", lambda b: b.scaler_connections, ""),
]


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} s" if unit == "s" else f"{value:.0f}"


def summary_rows(
    named: Sequence[tuple[str, Sequence[Burst]]], pairs: Sequence[tuple[str, str]]
) -> list[tuple[str, ...]]:
    """One column per scaler, then one ratio column per (ours, theirs) pair, ours over theirs."""
    found = dict(named)
    pairs = [(a, b) for a, b in pairs if a in found and b in found]
    header = ("", *[name for name, _ in named], *[f"{a} / {b}" for a, b in pairs])
    rows: list[tuple[str, ...]] = [header]
    blank = ["" for _ in pairs]
    distributions = {name: first_job(bursts) for name, bursts in named}
    for index, label in enumerate(("first job started p50", "  p95", "  max")):
        cells = [_cell(d[index] if d else None, "s") for d in distributions.values()]
        ratios = []
        for a, b in pairs:
            da, db = distributions[a], distributions[b]
            ratios.append(common.ratio(da[index], db[index]) if da and db else "-")
        rows.append((label, *cells, *ratios))
    for label, figure, unit in FIGURES:
        medians = {name: _median(bursts, figure) for name, bursts in named}
        ratios = []
        for a, b in pairs:
            ma, mb = medians[a], medians[b]
            ratios.append(common.ratio(ma, mb) if ma is not None and mb else "-")
        rows.append((label, *[_cell(m, unit) for m in medians.values()], *ratios))
    totals = [
        ("jobs running on a deleted pod (all bursts)", lambda b: b.jobs_on_deleted_pods),
        ("jobs completed (all bursts)", lambda b: b.completed),
    ]
    for label, figure in totals:
        sums = [sum(int(figure(b) or 0) for b in bursts) for _, bursts in named]
        rows.append((label, *[str(n) for n in sums], *blank))
    rows.append(("bursts", *[str(len(bursts)) for _, bursts in named], *blank))
    return rows


def timeline_rows(named: Sequence[tuple[str, Sequence[Burst]]]) -> list[tuple[str, ...]]:
    """Seconds after the commit at which each phase was reached (p50 over the bursts)."""
    rows: list[tuple[str, ...]] = [("seconds after the burst (p50)", *[n for n, _ in named])]
    for phase in PHASES:
        cells = []
        for _, bursts in named:
            values = [b.timeline[phase] for b in bursts if phase in b.timeline]
            cells.append(f"{statistics.median(values):.3f}" if values else "-")
        if any(cell != "-" for cell in cells):
            rows.append((phase, *cells))
    return rows


def last_line(named: Sequence[tuple[str, Sequence[Burst]]], ours_name: str, fastest: str) -> str:
    """The line a script reads: ours against KEDA at its fastest settings, first job p50."""
    found = dict(named)
    ours = first_job(found[ours_name]) if ours_name in found else None
    theirs = first_job(found[fastest]) if fastest in found else None
    if ours is None or theirs is None:
        return "first job p50 ours - s, keda-fastest - s, ratio -"
    return (
        f"first job p50 ours {ours[0]:.2f} s, keda-fastest {theirs[0]:.2f} s, "
        f"ratio {ours[0] / theirs[0]:.2f}"
    )
