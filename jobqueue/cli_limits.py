"""`jobqueue queues set NAME --concurrency 5 --key-concurrency 2 --rate 100/60s`: a queue's
flow-control limits from a terminal, the same change as `PATCH /queues/{name}`. `none` clears
a limit; an option left out keeps its value.

`set_limits` is a plain typer command, so the `queues` group attaches it with one line:
`queues_app.command("set")(cli_limits.set_limits)`.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

import typer
from rich.table import Table

from jobqueue.cli_common import console, load_settings, print_json, run_db
from worker.db import limits

CLEAR = ("none", "off", "unlimited")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_limit(text: str, option: str) -> int | None:
    """A positive whole number, or None for `none`; a bad value names the option."""
    if text.strip().lower() in CLEAR:
        return None
    try:
        value = int(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a whole number or 'none'", param_hint=option
        ) from None
    if not 1 <= value <= limits.MAX_LIMIT:
        raise typer.BadParameter(
            f"must be between 1 and {limits.MAX_LIMIT} (or 'none' to clear), not {value}",
            param_hint=option,
        )
    return value


def parse_rate(text: str, option: str = "'--rate'") -> limits.RateLimit | None:
    """`100/60s`, `100/1m`, `5/s`, `10/500ms`, or `none`: jobs per window."""
    if text.strip().lower() in CLEAR:
        return None
    match = _RATE.match(text)
    if match is None:
        raise typer.BadParameter(
            f"{text!r} is not JOBS/PERIOD, e.g. 100/60s, 100/1m, 5/s (or 'none' to clear)",
            param_hint=option,
        )
    jobs = int(match.group(1))
    seconds = float(match.group(2) or 1) * _UNIT_SECONDS[(match.group(3) or "s").lower()]
    if not 1 <= jobs <= limits.MAX_LIMIT:
        raise typer.BadParameter(
            f"the jobs must be between 1 and {limits.MAX_LIMIT}, not {jobs}", param_hint=option
        )
    if not (0 < seconds <= limits.MAX_PERIOD_SECONDS and math.isfinite(seconds)):
        raise typer.BadParameter(
            f"the period must be more than 0s and at most {limits.MAX_PERIOD_SECONDS:.0f}s,"
            f" not {seconds:g}s",
            param_hint=option,
        )
    return limits.RateLimit(jobs, seconds)


def _rate_text(rate: dict[str, Any] | None) -> str:
    return "-" if rate is None else f"{rate['jobs']}/{rate['per_seconds']:g}s"


def _show(flow: dict[str, Any]) -> None:
    table = Table(title=f"queue {flow['name']}", show_header=False)
    blocked = flow["blocked"]
    rows = [
        ("concurrency limit", flow["concurrency_limit"]),
        ("per-key limit", flow["key_concurrency_limit"]),
        ("rate limit", _rate_text(flow["rate_limit"])),
        ("running", flow["running"]),
        ("starts in the rate window", flow["recent_starts"] if flow["rate_limit"] else "-"),
        ("blocked by a limit", f"{'≥' if blocked['kind'] == 'at_least' else ''}{blocked['count']}"),
    ]
    for label, value in rows:
        table.add_row(label, "-" if value is None else str(value))
    console.print(table)


def set_limits(
    name: Annotated[str, typer.Argument(metavar="QUEUE", help="The queue to limit.")],
    concurrency: Annotated[
        str | None,
        typer.Option(metavar="N|none", help="Most jobs of the queue running at once."),
    ] = None,
    key_concurrency: Annotated[
        str | None,
        typer.Option(metavar="N|none", help="Most running jobs per concurrency key."),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(metavar="JOBS/PERIOD|none", help="Most starts per window, e.g. 100/60s."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Set or clear a queue's concurrency, per-key and rate limits."""
    if not name or "\x00" in name or len(name) > 200:
        raise typer.BadParameter("must be 1 to 200 characters, without NUL", param_hint="QUEUE")
    change = limits.LimitChange(
        concurrency_limit=limits.KEEP
        if concurrency is None
        else parse_limit(concurrency, "'--concurrency'"),
        key_concurrency_limit=limits.KEEP
        if key_concurrency is None
        else parse_limit(key_concurrency, "'--key-concurrency'"),
        rate_limit=limits.KEEP if rate is None else parse_rate(rate),
    )
    flow = run_db(load_settings(), lambda conn: limits.set_limits(conn, name, change))
    if as_json:
        print_json(flow.to_dict())
    else:
        _show(flow.to_dict())


# Until the `queues` group of jobqueue/cli_queues.py is here to attach `set` to.
queues_app = typer.Typer(help="Queue settings.", no_args_is_help=True)
queues_app.command("set")(set_limits)
