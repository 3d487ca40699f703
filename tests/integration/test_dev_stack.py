"""Smoke test of `jobqueue dev`: embedded PostgreSQL, the API, and local workers scaled from
zero by the controller's policy; then a Ctrl-C that leaves no process and no lock behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import free_port, log_tail, start_logged, stop_process, wait_until
from tests.fixtures.tools import REPO_ROOT

STARTUP_BOUND = 180  # first run: initdb, migrations, the API's imports on a busy machine
PID_LINE = re.compile(r"\(pid (\d+)\)")


def stat_fields(stat: Path) -> list[str] | None:
    """/proc/<pid>/stat past the command name ([state, ppid, ...]); None once the process is
    gone, or a zombie."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None if fields[0] == "Z" else fields


def alive(pid: int) -> bool:
    return stat_fields(Path(f"/proc/{pid}/stat")) is not None


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = stat_fields(stat)
        if fields is not None and int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def dev_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "worker", "dev", "--no-ui", *args]


def refused_dev(*args: str) -> subprocess.CompletedProcess[str]:
    """A `jobqueue dev` that is expected to refuse to start."""
    return subprocess.run(
        dev_command(*args), capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # not under pytest's tmp_path: as root, PostgreSQL runs as nobody, who must enter it
    directory = Path(tempfile.mkdtemp(prefix="jobqueue-dev-test-"))
    directory.chmod(0o755)
    try:
        yield directory / "stack"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Stack:
    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        args = dev_command("--data-dir", str(data_dir), "--port", str(self.port))
        args += ["--max-workers", "2", "--jobs-per-worker", "5", "--scale-down-delay", "1"]
        env = {**os.environ, "JOBQUEUE_DRAIN_TIMEOUT": "5", "DB_URL": "postgresql://unused@x/y"}
        self.proc = start_logged(args, log, env=env, cwd=REPO_ROOT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def check_running(self) -> None:
        assert self.proc.poll() is None, f"jobqueue dev exited:\n{log_tail(self.log, 80)}"

    def ready(self) -> bool:
        self.check_running()
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_for_log(self, needle: str, bound: float = 60) -> None:
        def seen() -> bool:
            self.check_running()
            return needle in self.text()

        wait_until(seen, timeout=bound, what=f"{needle!r} in the log:\n{log_tail(self.log, 80)}")

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it (to the process group), then the exit code."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)
            raise AssertionError(f"no exit after SIGINT:\n{log_tail(self.log, 80)}") from None


def test_dev_scales_from_zero_runs_a_job_scales_down_and_stops_clean(
    data_dir: Path, tmp_path: Path
) -> None:
    stack = Stack(data_dir, tmp_path / "dev.log")
    try:
        wait_until(stack.ready, timeout=STARTUP_BOUND, what="the dev stack's API")
        postmaster = data_dir / "postgres" / "data" / "postmaster.pid"
        pg_pid = int(postmaster.read_text().split()[0])
        assert alive(pg_pid)
        (api_pid,) = children_of(stack.proc.pid)  # the API alone: no workers at zero
        assert "started dev-worker" not in stack.text()

        job = {"job_type": "noop", "payload": {}, "queue_name": "default", "max_tries": 3}
        # secure by default with no token: loopback only, loopback names only (no DNS
        # rebinding), and no cross-site write (docs/security.md)
        assert "127.0.0.1" in stack.url
        rebound = httpx.post(
            f"{stack.url}/api/v1/queue/jobs", json=job, headers={"Host": "evil.example"}
        )
        assert rebound.status_code == 400 and "JOBQUEUE_API_ALLOWED_HOSTS" in rebound.text
        foreign = httpx.post(
            f"{stack.url}/api/v1/queue/jobs", json=job, headers={"Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403
        created = httpx.post(f"{stack.url}/api/v1/queue/jobs", json=job, timeout=10)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        def finished() -> bool:
            stack.check_running()
            response = httpx.get(f"{stack.url}/api/v1/queue/jobs/{job_id}", timeout=10)
            return response.json()["status"] == "completed"

        wait_until(finished, timeout=120, what=f"job {job_id}:\n{log_tail(stack.log, 80)}")
        assert "scaled 0 → 1 workers (scale-up: 1 ready, 0 running)" in stack.text()
        worker_pids = {int(pid) for pid in PID_LINE.findall(stack.text())} - {api_pid}
        assert len(worker_pids) == 1

        stack.wait_for_log("scaled 1 → 0 workers (scale-down")
        stack.wait_for_log("dev-worker-1 stopped (exit code 0)")
        assert children_of(stack.proc.pid) == {api_pid}
        assert not any(alive(pid) for pid in worker_pids)

        assert stack.interrupt() == 0, log_tail(stack.log, 80)
    finally:
        stop_process(stack.proc)
    for pid in (api_pid, pg_pid, *worker_pids):
        assert not alive(pid), f"pid {pid} outlived jobqueue dev"
    assert not postmaster.exists()
    assert "stopped" in stack.text().splitlines()[-1]

    # No stale lock: a second stack on the same directory starts, reuses the data, and stops.
    again = Stack(data_dir, tmp_path / "dev-again.log")
    try:
        wait_until(again.ready, timeout=STARTUP_BOUND, what="the second stack's API")
        assert "schema is up to date" in again.text()
        assert "first run only" not in again.text()
        response = httpx.get(f"{again.url}/api/v1/queue/jobs/{job_id}", timeout=10)
        assert response.json()["status"] == "completed"  # the data survived the restart
        started = children_of(again.proc.pid)
        assert again.interrupt() == 0, log_tail(again.log, 80)
    finally:
        stop_process(again.proc)
    assert not any(alive(pid) for pid in started)


def test_a_second_stack_on_the_same_directory_is_refused(data_dir: Path, tmp_path: Path) -> None:
    first = Stack(data_dir, tmp_path / "first.log")
    try:
        wait_until(first.ready, timeout=STARTUP_BOUND, what="the first stack's API")
        second = refused_dev("--data-dir", str(data_dir))
        assert second.returncode == 1
        assert f"another `jobqueue dev` is using {data_dir}" in second.stdout + second.stderr
        assert "Traceback" not in second.stdout + second.stderr
        # the refused stack left the running one's logs alone
        api_log = data_dir / "logs" / "api.log"
        assert "Application startup complete" in api_log.read_text(errors="replace")
        busy = refused_dev("--port", str(first.port), "--data-dir", str(data_dir.parent / "other"))
        assert busy.returncode == 1 and f"port {first.port} is in use" in busy.stdout
        assert first.interrupt() == 0
    finally:
        stop_process(first.proc)
    assert not (data_dir / "postgres" / "data" / "postmaster.pid").exists()
