"""What the benchmarks share: their command line, a throwaway server, fresh databases, child
processes that start together, and the printed report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/bench_x.py` from anywhere
    sys.path.insert(0, str(REPO))

from tests.fixtures import postgres as pg  # noqa: E402
from worker.db.sql_files import parse_named_statements  # noqa: E402

SQL = parse_named_statements((Path(__file__).parent / "sql" / "anchors.sql").read_text())
SPAWN = mp.get_context("spawn")

# The options most drain benchmarks take: name -> (default, help).
SHARED_OPTIONS: dict[str, tuple[Any, str]] = {
    "jobs": (100_000, "jobs to pre-fill per run"),
    "rounds": (3, "rounds of each variant, alternating"),
    "processes": (2, "worker processes"),
    "slots": (1000, "our MAX_CONCURRENT_JOBS"),
    "ack_batch": (500, "our JOBQUEUE_ACK_BATCH_SIZE"),
}


def option_parser(doc: str, shared: str = "", **own: Any) -> argparse.ArgumentParser:
    """A benchmark's command line, described by the first line of its docstring. `shared` names
    options of SHARED_OPTIONS (space-separated) taken as they are; each keyword is an option
    (`ack_batch` is `--ack-batch`) given as (default, help), or as a bare default for one of
    SHARED_OPTIONS with its help. The default's type is the option's; False makes a flag."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    specs = {name: SHARED_OPTIONS[name] for name in shared.split()}
    for name, spec in own.items():
        specs[name] = spec if isinstance(spec, tuple) else (spec, SHARED_OPTIONS[name][1])
    for name, (default, help_text) in specs.items():
        flag = "--" + name.replace("_", "-")
        if default is False:
            parser.add_argument(flag, action="store_true", help=help_text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=help_text)
    return parser


def options(doc: str, shared: str = "", **own: Any) -> argparse.Namespace:
    """The parsed command line of option_parser(doc, shared, **own)."""
    return option_parser(doc, shared, **own).parse_args()


@contextlib.contextmanager
def server() -> Iterator[Any]:
    """JOBQUEUE_TEST_DSN's server, or a throwaway one started the way the tests start theirs."""
    external = os.environ.get("JOBQUEUE_TEST_DSN")
    if external:
        yield pg.ExternalServer(external)
        return
    local = pg.PostgresServer()
    local.init()
    local.start()
    try:
        yield local
    finally:
        local.destroy()


async def fresh_database(srv: Any, name: str, *, migrated: bool) -> str:
    """A new, empty database for one contender, so no run inherits another's dead rows."""
    await pg.drop_database(srv.dsn(), name)
    if migrated:
        return await pg.create_migrated_database(srv, name)
    await pg.create_database(srv.dsn(), name)
    return str(srv.dsn(name))


def start_children(
    target: Callable[..., None], args_for: Callable[[int], tuple[Any, ...]], count: int
) -> tuple[list[Any], Any, Any]:
    """Start `count` processes that set up, wait for `go`, then run until `stop`; returns
    (processes, go, stop). Each child gets (index, ready, go, stop, *args_for(index))."""
    go, stop = SPAWN.Event(), SPAWN.Event()
    readies = [SPAWN.Event() for _ in range(count)]
    procs = [
        SPAWN.Process(target=target, args=(i, readies[i], go, stop, *args_for(i)), daemon=True)
        for i in range(count)
    ]
    for proc in procs:
        proc.start()
    for ready in readies:
        if not ready.wait(120):
            raise RuntimeError("a benchmark process did not get ready")
    return procs, go, stop


def join_children(procs: list[Any], stop: Any) -> None:
    stop.set()
    for proc in procs:
        proc.join(60)
        if proc.is_alive():  # our own child, by its pid
            proc.kill()
            proc.join()


async def wait_drained(
    dsn: str,
    probe: str,
    *,
    poll: float = 0.01,
    sample_connections: list[int] | None = None,
    procs: list[Any] | None = None,
) -> float:
    """Poll until the probe says nothing is left; returns time.monotonic() then. Meanwhile
    samples the most connections any one benchmark process holds, and fails if one of `procs`
    died (instead of waiting forever)."""
    conn = await asyncpg.connect(dsn)
    try:
        rounds = 0
        while await conn.fetchval(probe):
            if procs and any(proc.exitcode not in (None, 0) for proc in procs):
                raise RuntimeError("a benchmark process failed; see its traceback above")
            if sample_connections is not None and rounds % 10 == 0:
                rows = await conn.fetch(SQL["connections_by_application"])
                sample_connections.extend(row["connections"] for row in rows)
            rounds += 1
            await asyncio.sleep(poll)
        return time.monotonic()
    finally:
        await conn.close()


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    print(f"\n{title}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths))


def machine_note() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
