"""The parts of bench/bench_soak.py: a code tree and its workers, the pins,
and what is read each minute. Nothing here knows a table of ours by name beyond the `jobs`
relation's contract: sizes come from the catalog, so a soak runs on any revision."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from tests.fixtures.processes import start_logged
from tests.fixtures.releases import describe, extract_tree
from worker.db.sql_files import parse_named_statements

SQL = parse_named_statements((Path(__file__).parent / "sql" / "soak.sql").read_text())
REPO = Path(__file__).resolve().parents[1]
RETENTION_SECONDS = 120  # longer than a minute, so each minute's figures are still there
PIN_MODES = ("idle", "rr", "reads-jobs")


@dataclass(frozen=True)
class Tree:
    """The code a soak runs: this checkout, or another revision extracted from git."""

    path: Path
    label: str

    @classmethod
    def here(cls) -> Tree:
        return cls(REPO, "this tree")

    @classmethod
    def revision(cls, revision: str, workdir: Path) -> Tree:
        return cls(extract_tree(revision, workdir / f"tree-{revision}"), describe(revision))

    def env(self, dsn: str) -> dict[str, str]:
        """Its packages first (this repository after, for anything it lacks), and none of the
        caller's JOBQUEUE_ settings."""
        path = [str(self.path)] if self.path == REPO else [str(self.path), str(REPO)]
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")},
            "PYTHONPATH": os.pathsep.join(path),
            "DB_URL": dsn,
        }

    def migrate(self, dsn: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "worker", "migrate"],
            cwd=self.path,
            env=self.env(dsn),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"migrate in {self.label} failed:\n{done.stdout}{done.stderr}")

    def offer(self, dsn: str, rate: int, workdir: Path) -> Any:
        """The offered load (bench/soak_offer.py), through this tree's own enqueue."""
        env = {**self.env(dsn), "PYTHONPATH": os.pathsep.join([str(self.path), str(REPO)])}
        args = [sys.executable, "-m", "bench.soak_offer", dsn, str(rate)]
        return start_logged(args, workdir / "soak-offer.log", env=env, cwd=str(self.path))

    def workers(self, dsn: str, count: int, slots: int, workdir: Path) -> list[Any]:
        env = {
            **self.env(dsn),
            "MAX_CONCURRENT_JOBS": str(slots),
            "JOBQUEUE_WORKER_PORT": "0",
            "JOBQUEUE_RETENTION_SECONDS": str(RETENTION_SECONDS),
            "JOBQUEUE_RETENTION_INTERVAL": "10",
        }
        args = [sys.executable, "-m", "worker", "worker"]
        return [
            start_logged(args, workdir / f"soak-worker-{n}.log", env=env, cwd=str(self.path))
            for n in range(count)
        ]


class Pin:
    """A session that holds the xmin horizon back, in one of three ways:
    - idle: an idle transaction that took an xid (a forgotten BEGIN); it reads nothing;
    - rr: one long REPEATABLE READ query over a table of its own (an analytics query
      elsewhere in the database); it holds no lock on our tables;
    - reads-jobs: a REPEATABLE READ transaction that read our `jobs`, then idles: it holds
      locks on what it read, so a layout that reclaims space by TRUNCATE must wait for it."""

    def __init__(self, dsn: str, mode: str, seconds: float) -> None:
        if mode not in PIN_MODES:
            raise ValueError(f"--pin-mode must be one of {', '.join(PIN_MODES)}, not {mode!r}")
        self.dsn, self.mode, self.seconds = dsn, mode, seconds
        self._conn: asyncpg.Connection | None = None
        self._query: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        conn = self._conn = await asyncpg.connect(self.dsn)
        if self.mode == "idle":
            await conn.execute("BEGIN")
            await conn.fetchval(SQL["soak_pin_idle"])
        elif self.mode == "rr":
            await conn.execute(SQL["soak_pin_table"])
            await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            # runs the whole pin; the end cancels it if it is still running
            self._query = asyncio.create_task(conn.fetchval(SQL["soak_pin_rr"], self.seconds))
        else:
            await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            await conn.fetchval(SQL["soak_pin_reads_jobs"])

    async def end(self) -> None:
        if self._query is not None:
            self._query.cancel()
            await asyncio.gather(self._query, return_exceptions=True)
        if self._conn is not None:
            self._conn.terminate()  # whatever it was doing ends with the session
        self._conn = self._query = None

    @property
    def active(self) -> bool:
        return self._conn is not None


@dataclass
class Minute:
    """One minute's figures."""

    minute: int
    pinned: bool
    offered_per_second: float
    jobs_per_second: float
    p50_ms: float
    p99_ms: float
    tables: list[tuple[str, int, int, int]] = field(default_factory=list)  # name, heap, idx, dead
    horizon_xids: int = 0
    horizon_seconds: float = 0.0

    @property
    def total_bytes(self) -> int:
        return sum(heap + index for _, heap, index, _ in self.tables)

    @property
    def dead(self) -> int:
        return sum(dead for *_, dead in self.tables)


async def sample(conn: asyncpg.Connection, minute: int, pinned: bool) -> Minute:
    """The last minute's figures, read on a connection that holds no snapshot in between."""
    lat = await conn.fetchrow(SQL["soak_minute"], 60.0)
    tables = await conn.fetch(SQL["soak_tables"])
    horizon = await conn.fetchrow(SQL["soak_horizon"])
    assert lat is not None and horizon is not None
    return Minute(
        minute=minute,
        pinned=pinned,
        offered_per_second=(lat["enqueued"] or 0) / 60,
        jobs_per_second=(lat["completed"] or 0) / 60,
        p50_ms=(lat["p50"] or 0) * 1000,
        p99_ms=(lat["p99"] or 0) * 1000,
        tables=[(r["name"], r["table_bytes"], r["index_bytes"], r["dead"]) for r in tables],
        horizon_xids=int(horizon["xids"] or 0),
        horizon_seconds=float(horizon["seconds"] or 0),
    )
