"""Draws docs/architecture.png, the README's picture of the system.

    .venv/bin/python docs/architecture.py

Pure matplotlib (in the dev extra): no Graphviz to install. Edit the boxes and arrows below,
run it, and commit the PNG with this script.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

OUT = Path(__file__).with_name("architecture.png")

BLUE, GREEN, ORANGE, GREY, PURPLE = "#dbe9f6", "#dff0d8", "#fbe5cc", "#eeeeee", "#e8def3"

# name: (x, y, width, height, colour, title, detail)
BOXES = {
    "clients": (0.3, 7.6, 3.0, 1.4, GREY, "Clients", "curl, services,\n`jobqueue enqueue`"),
    "api": (
        4.3,
        7.6,
        3.4,
        1.4,
        BLUE,
        "API  :8001",
        "worker/api: FastAPI, /docs, /metrics\npool of ≤10 connections",
    ),
    "controller": (
        0.3,
        4.2,
        3.2,
        2.2,
        PURPLE,
        "Controller  (kopf)",
        "controller/: policy.py (pure)\ndepth probe: 1 connection\n"
        "(its SQL in worker/db)\nLease: one active replica",
    ),
    "pg": (
        4.3,
        4.2,
        3.4,
        2.2,
        ORANGE,
        "PostgreSQL",
        "jobs + workers tables\nclaim: FOR UPDATE SKIP LOCKED\nNOTIFY jobqueue_new_job",
    ),
    "workers": (
        9.0,
        4.2,
        3.9,
        2.2,
        GREEN,
        "Worker pods  (Deployment)",
        "`jobqueue worker` (worker/runtime):\n≤3 connections (LISTEN + a pool of 2),\n"
        "fenced leases, drain on SIGTERM",
    ),
    "kube": (
        0.3,
        1.6,
        7.4,
        1.5,
        GREY,
        "kube-apiserver",
        "Deployments labelled jobqueue.dev/autoscale=true:\n"
        "/scale · jobqueue.dev/status annotation · Events · pod-deletion-cost",
    ),
    "kubectl": (
        9.0,
        1.6,
        3.9,
        1.5,
        GREY,
        "kubectl jobqueue",
        "controller/kubectl_plugin.py\nstatus · events · -n NAMESPACE · -A",
    ),
    "dev": (
        0.3,
        0.1,
        12.6,
        1.1,
        "#fff8d6",
        "Without a cluster:  make dev  (jobqueue dev, in jobqueue/dev)",
        "embedded PostgreSQL · the API · controller/policy.py scaling local worker processes"
        " · a live Rich view   (imports flow one way: jobqueue → controller → worker)",
    ),
}

# (from, to, label, (x, y) on the first box, (x, y) on the second), as fractions of each box
ARROWS = [
    ("clients", "api", "POST /api/v1/queue/jobs", (1, 0.5), (0, 0.5)),
    ("api", "pg", "INSERT, then NOTIFY", (0.5, 0), (0.5, 1)),
    ("pg", "workers", "LISTEN · claim a batch\nack · heartbeat", (1, 0.5), (0, 0.5)),
    ("controller", "pg", "ready + running\n(capped counts)", (1, 0.5), (0, 0.5)),
    ("controller", "kube", "scale · status · Events", (0.5, 0), (0.216, 1)),
    ("kube", "workers", "replicas", (0.93, 1), (0.15, 0)),
    ("kubectl", "kube", "reads", (0, 0.5), (1, 0.5)),
]


def anchor(name: str, fraction: tuple[float, float]) -> tuple[float, float]:
    x, y, w, h = BOXES[name][:4]
    return (x + w * fraction[0], y + h * fraction[1])


def draw() -> None:
    fig, ax = plt.subplots(figsize=(13.5, 9.3), dpi=110)
    ax.set_xlim(0, 13.2)
    ax.set_ylim(0, 9.1)
    ax.axis("off")
    for x, y, w, h, colour, title, detail in BOXES.values():
        ax.add_patch(
            FancyBboxPatch(
                (x, y),
                w,
                h,
                boxstyle="round,pad=0.02,rounding_size=0.15",
                facecolor=colour,
                edgecolor="#555555",
                linewidth=1.2,
            )
        )
        ax.text(
            x + w / 2, y + h - 0.28, title, ha="center", va="center", fontsize=12, fontweight="bold"
        )
        ax.text(
            x + w / 2,
            y + (h - 0.45) / 2,
            detail,
            ha="center",
            va="center",
            fontsize=9.5,
            linespacing=1.35,
        )
    for start, end, label, start_side, end_side in ARROWS:
        a, b = anchor(start, start_side), anchor(end, end_side)
        bend = 0.0 if a[0] == b[0] or a[1] == b[1] else 0.2
        ax.add_patch(
            FancyArrowPatch(
                a,
                b,
                arrowstyle="-|>",
                mutation_scale=16,
                linewidth=1.4,
                color="#333333",
                connectionstyle=f"arc3,rad={bend}",
                shrinkA=4,
                shrinkB=4,
            )
        )
        if label:
            mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
            ax.text(
                mx,
                my + 0.05,
                label,
                ha="center",
                va="bottom",
                fontsize=8.5,
                color="#222222",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
            )
    ax.set_title(
        "Job-Queue: a PostgreSQL job queue with its own Kubernetes autoscaler (no broker, no CRDs)",
        fontsize=13,
        pad=10,
    )
    fig.tight_layout()
    fig.savefig(OUT, facecolor="white")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    draw()
