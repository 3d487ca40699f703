"""Soak under a pinned xmin horizon: a steady offered rate to 2 `jobqueue worker` processes
with retention pruning on, and in the middle of the run a session that pins the horizon.

Each minute it prints the offered and completed jobs/s, p50/p99 from enqueue to start, the
total size of our tables with their indexes, dead tuples and the horizon's age, then a line
with every table of ours (found in the catalog, so it follows the layout). At the end, the
issue's goals: throughput against the offered rate in every pinned minute, p99 pinned against
unpinned, and the size's growth over the pin and 5 minutes after it.

Pins (--pin-mode): `idle`, an idle transaction that took an xid; `rr`, one long REPEATABLE
READ query over a table of its own; `reads-jobs`, a REPEATABLE READ transaction that read our
`jobs`, then idles.

--against REV runs the same soak on another revision's code (extracted with git archive) on a
server of its own, after this tree's, and prints both side by side with their ratios.

    python -m bench.bench_soak                       # 30 minutes, pinned for 15, 3,000 jobs/s
    python -m bench.bench_soak --rate 800 --against main
    python -m bench.bench_soak --minutes 4 --pin-minutes 2 --rate 800   # a smoke
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database, machine_note, print_table, ratio, server
from bench.soak_support import PIN_MODES, Minute, Pin, Tree, sample
from tests.fixtures.processes import log_tail, stop_process

MB = 2**20
SMALL_TABLE_BYTES = 0.1 * MB  # smaller tables are summed in one item of the table line
AFTER_PIN_MINUTES = 5  # the "comes back within 5 minutes after it"


def pin_window(minutes: int, pin_minutes: int) -> range:
    """The pinned minutes (0-based), in the middle of the run, after at least one unpinned
    minute when there is room for one (the summary's baseline)."""
    pin_minutes = min(pin_minutes, minutes)
    start = (minutes - pin_minutes) // 2
    if minutes > pin_minutes:
        start = max(start, 1)
    return range(start, start + pin_minutes)


async def soak(
    tree: Tree, *, minutes: int, pin_minutes: int, mode: str, rate: int, workers: int, slots: int
) -> list[Minute]:
    """One soak of `tree`, on a server of its own; prints each minute as it ends."""
    pinned = pin_window(minutes, pin_minutes)
    rows: list[Minute] = []
    with server() as srv, tempfile.TemporaryDirectory(prefix="jobqueue-soak-") as workdir:
        dsn = await fresh_database(srv, "soak", migrated=False)
        await asyncio.to_thread(tree.migrate, dsn)
        procs = tree.workers(dsn, workers, slots, Path(workdir))
        offering = tree.offer(dsn, rate, Path(workdir))
        stats = await asyncpg.connect(dsn)
        pin = Pin(dsn, mode, 60.0 * len(pinned))
        when = (
            f"pinned ({mode}) in minutes {pinned.start + 1}-{pinned.stop}" if pinned else "no pin"
        )
        print(
            f"\nsoak of {tree.label}: {rate} jobs/s offered to {workers} workers for "
            f"{minutes} min; {when}"
        )
        print(_HEADER)
        started = time.monotonic()
        try:
            for minute in range(minutes):
                if minute in pinned and not pin.active:
                    await pin.start()
                if minute not in pinned and pin.active:
                    await pin.end()
                # minutes on the clock, however long the reads of the last one took
                await asyncio.sleep(max(0.0, started + 60 * (minute + 1) - time.monotonic()))
                _check_alive(offering, procs, Path(workdir))
                row = await sample(stats, minute + 1, minute in pinned)
                rows.append(row)
                print(_line(row), flush=True)
                print(_tables(row), flush=True)
        finally:
            await pin.end()
            await stats.close()
            for proc in [offering, *procs]:
                await asyncio.to_thread(stop_process, proc)
    for line in summary(rows):
        print(line)
    return rows


def _check_alive(offering: Any, procs: list[Any], workdir: Path) -> None:
    """The offered load and the workers run to the end: if one stopped, say why, now."""
    logs = ["soak-offer.log"] + [f"soak-worker-{n}.log" for n in range(len(procs))]
    for proc, log in zip([offering, *procs], logs, strict=True):
        if proc.poll() is not None:
            raise RuntimeError(f"{log} ended (exit {proc.returncode}):\n{log_tail(workdir / log)}")


_HEADER = "min  offered  jobs/s   p50 ms    p99 ms  MB total   dead tup  horizon xids  age s  pin"


def _line(row: Minute) -> str:
    return (
        f"{row.minute:>3}  {row.offered_per_second:>7.0f}  {row.jobs_per_second:>6.0f}  "
        f"{row.p50_ms:>7.1f}  {row.p99_ms:>8.1f}  {row.total_bytes / MB:>8.1f}  "
        f"{row.dead:>9,}  {row.horizon_xids:>12,}  {row.horizon_seconds:>5.0f}  "
        f"{'pinned' if row.pinned else ''}"
    )


def _tables(row: Minute) -> str:
    """Every table of ours: heap+index MB (dead tuples), small ones summed."""
    items, small, small_bytes = [], 0, 0
    for name, heap, index, dead in row.tables:
        if heap + index < SMALL_TABLE_BYTES:
            small, small_bytes = small + 1, small_bytes + heap + index
            continue
        items.append(f"{name} {heap / MB:.1f}+{index / MB:.1f} ({dead:,} dead)")
    if small:
        items.append(
            f"{small} tables under {SMALL_TABLE_BYTES / MB:.1f} MB: {small_bytes / MB:.2f}"
        )
    return "       " + "; ".join(items)


def summary(rows: list[Minute]) -> list[str]:
    """The issue's goals, read off one run: throughput against the offered rate in every
    pinned minute, p99 pinned against unpinned, size over the pin and after it."""
    pinned = [r for r in rows if r.pinned]
    before = [r for r in rows if not r.pinned and (not pinned or r.minute < pinned[0].minute)]
    if not pinned or not before:
        return ["(no unpinned minute before the pin: no summary)"]
    base = before[-1]
    warm = before[1:] or before  # the first minute includes the workers' start
    calm_p99 = statistics.median(r.p99_ms for r in warm)
    worst = min(pinned, key=lambda r: r.jobs_per_second / max(r.offered_per_second, 1))
    slowest = max(pinned, key=lambda r: r.p99_ms)
    lines = [
        f"worst pinned minute ({worst.minute}): {worst.jobs_per_second:.0f} of "
        f"{worst.offered_per_second:.0f} jobs/s offered "
        f"({ratio(worst.jobs_per_second, worst.offered_per_second)}; goal >= 0.95x)",
        f"p99 unpinned {calm_p99:.1f} ms, pinned at most {slowest.p99_ms:.1f} ms (minute "
        f"{slowest.minute}; {ratio(slowest.p99_ms, calm_p99)}; goal <= 5x and < 100 ms)",
        f"size {base.total_bytes / MB:.1f} MB before the pin, {pinned[-1].total_bytes / MB:.1f} "
        f"MB at its end ({ratio(pinned[-1].total_bytes, base.total_bytes)}; goal <= 2x)",
    ]
    later = [r for r in rows if r.minute > pinned[-1].minute]
    if later:
        at = later[min(AFTER_PIN_MINUTES, len(later)) - 1]
        lines.append(
            f"size {at.minute - pinned[-1].minute} min after the pin: "
            f"{at.total_bytes / MB:.1f} MB ({ratio(at.total_bytes, base.total_bytes)} of before)"
        )
    return lines


def side_by_side(ours: list[Minute], theirs: list[Minute], label: str) -> None:
    """Both runs, minute by minute, with ratios ours / theirs."""
    head = ("min", "pin", "jobs/s", "anchor", "ratio", "p99 ms", "anchor", "ratio", "MB")
    rows = [(*head, "anchor", "ratio", "dead", "anchor")]
    for a, b in zip(ours, theirs, strict=False):
        rows.append(
            (
                str(a.minute),
                "pinned" if a.pinned else "",
                f"{a.jobs_per_second:.0f}",
                f"{b.jobs_per_second:.0f}",
                ratio(a.jobs_per_second, b.jobs_per_second),
                f"{a.p99_ms:.1f}",
                f"{b.p99_ms:.1f}",
                ratio(a.p99_ms, b.p99_ms),
                f"{a.total_bytes / MB:.1f}",
                f"{b.total_bytes / MB:.1f}",
                ratio(a.total_bytes, b.total_bytes),
                f"{a.dead:,}",
                f"{b.dead:,}",
            )
        )
    print_table(f"this tree beside the anchor, {label}: ratio = this tree / anchor", rows)


async def main(args: argparse.Namespace) -> None:
    settings = {
        "minutes": args.minutes,
        "pin_minutes": args.pin_minutes,
        "mode": args.pin_mode,
        "rate": args.rate,
        "workers": args.workers,
        "slots": args.slots,
    }
    with tempfile.TemporaryDirectory(prefix="jobqueue-soak-trees-") as trees:
        anchor = Tree.revision(args.against, Path(trees)) if args.against else None
        ours = await soak(Tree.here(), **settings)
        if anchor is not None:
            theirs = await soak(anchor, **settings)
            side_by_side(ours, theirs, anchor.label)
    print(machine_note())


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30, help="length of the run")
    parser.add_argument("--pin-minutes", type=int, default=15, help="pinned minutes, mid-run")
    parser.add_argument("--pin-mode", choices=PIN_MODES, default="idle", help="how it pins")
    parser.add_argument("--rate", type=int, default=3000, help="offered jobs per second")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--slots", type=int, default=200, help="MAX_CONCURRENT_JOBS of each")
    parser.add_argument("--against", metavar="REV", help="also soak this git revision")
    args = parser.parse_args()
    if not 0 < args.minutes or not 0 <= args.pin_minutes <= args.minutes:
        parser.error("--pin-minutes must be between 0 and --minutes, and --minutes positive")
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
