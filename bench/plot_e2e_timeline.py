"""Plots the end-to-end timeline: worker replicas, ready jobs and running jobs over time.

    .venv/bin/pytest tests/e2e -m kwok          # writes .tmp/e2e/e2e-timeline-<variant>.json
    .venv/bin/python bench/plot_e2e_timeline.py  # draws docs/e2e-timeline.png from them

Give JSON files as arguments to plot others (one panel each), and --out to write elsewhere.
The L4 tests write one file per variant (normal, fault); JOBQUEUE_E2E_TIMELINE_DIR adds a
directory of your choice. Pure matplotlib (in the dev extra).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUTS = [REPO / ".tmp" / "e2e" / f"e2e-timeline-{v}.json" for v in ("normal", "fault")]
DEFAULT_OUT = REPO / "docs" / "e2e-timeline.png"
MARKS = (("drain_s", "drained"), ("back_to_zero_s", "back at zero"))
TITLES = {
    "normal": "2,000 jobs from zero workers",
    "fault": "the same, one worker SIGKILLed mid-burst",
    "kind": "2,000 jobs from zero workers, on kind",
}


def _seconds(summary: dict[str, Any], key: str) -> str:
    value = summary.get(key)
    return "never" if value is None else f"{value:.1f} s"


def caption(summary: dict[str, Any]) -> str:
    return (
        f"first scale-up {_seconds(summary, 'first_scale_up_s')} · "
        f"peak {summary['peak_replicas']} replicas · "
        f"drained in {_seconds(summary, 'drain_s')} · "
        f"back to zero {_seconds(summary, 'back_to_zero_s')}"
    )


def draw(axes: Axes, run: dict[str, Any]) -> None:
    samples = run["samples"]
    times = [s["t"] for s in samples]
    axes.plot(times, [s["ready"] for s in samples], color="#4c72b0", label="ready jobs")
    axes.plot(times, [s["running"] for s in samples], color="#dd8452", label="running jobs")
    axes.set_ylabel("jobs")
    axes.set_xlabel("seconds since the burst was enqueued")
    axes.grid(alpha=0.3)
    replicas_axis = axes.twinx()
    replicas_axis.step(
        times, [s["replicas"] for s in samples], where="post", color="#55a868", lw=2,
        label="replicas (spec)",
    )  # fmt: skip
    if any(s.get("processes") is not None for s in samples):
        # kwok: the local processes the pod runner started; kind: the worker pods themselves
        label = "worker pods" if run.get("variant") == "kind" else "worker processes"
        replicas_axis.step(
            times, [s.get("processes") or 0 for s in samples], where="post", color="#55a868",
            lw=1, ls="--", label=label,
        )  # fmt: skip
    peak = max([s["replicas"] for s in samples] + [1])
    replicas_axis.set_ylim(0, peak + 1)
    replicas_axis.set_ylabel("worker replicas")
    summary = run["summary"]
    marks = [(summary.get(key), label, "grey") for key, label in MARKS]
    marks += [(e["t"], "worker SIGKILLed", "#c44e52") for e in run.get("pod_events", [])
              if e["event"] == "kill"]  # fmt: skip
    for at, label, colour in marks:
        if at is not None:
            axes.axvline(at, color=colour, ls=":", lw=1)
            axes.annotate(
                label, (at, 1.0), xycoords=("data", "axes fraction"), xytext=(-3, -12),
                textcoords="offset points", fontsize=8, color=colour, ha="right",
            )  # fmt: skip
    title = TITLES.get(run.get("variant", ""), run.get("variant", ""))
    axes.set_title(f"{title}\n{caption(summary)}", fontsize=10)
    lines = axes.get_legend_handles_labels()
    more = replicas_axis.get_legend_handles_labels()
    axes.legend(lines[0] + more[0], lines[1] + more[1], loc="center right", fontsize=8)


def plot(inputs: list[Path], out: Path) -> Path:
    runs = [json.loads(path.read_text()) for path in inputs]
    figure, panels = plt.subplots(len(runs), 1, figsize=(9, 3.6 * len(runs)), squeeze=False)
    for axes, run in zip(panels[:, 0], runs, strict=True):
        draw(axes, run)
    figure.suptitle("End to end on kwok: helm install, burst, scale 0 → N → 0", fontsize=12)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path, help="timeline JSON files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    inputs = args.inputs or [path for path in DEFAULT_INPUTS if path.exists()]
    if not inputs:
        parser.error("no timeline JSON: run the L4 tests first (pytest tests/e2e -m kwok)")
    print(f"wrote {plot(inputs, args.out)}")


if __name__ == "__main__":
    main()
