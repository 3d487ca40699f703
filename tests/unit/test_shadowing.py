"""`worker` and `controller` are top-level packages, so a user's own `worker.py` (the most
natural name for one) can stand in their place on sys.path. Our code then stops at once with
one line that names the file in the way, instead of failing later in confusing imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.handlers.base import HandlerRegistry

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # the user's folder first on sys.path (as `python app.py` puts it), then ours
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
    )


@pytest.mark.parametrize("shadow", ["worker.py", "controller/__init__.py"])
def test_import_jobqueue_names_the_shadowing_file(tmp_path: Path, shadow: str) -> None:
    (tmp_path / shadow).parent.mkdir(exist_ok=True)
    (tmp_path / shadow).write_text("print('the app')\n")
    result = _run(tmp_path, "-c", "import jobqueue")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    name = shadow.split("/")[0].removesuffix(".py")
    assert last.startswith(f"jobqueue.guard.ShadowedPackage: {tmp_path / shadow} shadows")
    assert f"internal package {name!r}" in last


def test_the_command_says_it_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "worker.py").write_text("")
    result = _run(tmp_path, "-m", "jobqueue", "--help")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'worker.py'} shadows job-queue's internal")


def test_a_folder_without_init_does_not_shadow(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()  # a namespace portion: our regular package still wins
    result = _run(tmp_path, "-c", "import jobqueue, worker.client; print('ok')")
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr


def test_handler_modules_may_not_name_our_packages() -> None:
    with pytest.raises(ImportError, match="'worker', which is job-queue's own package"):
        HandlerRegistry().load_modules(["worker"])
