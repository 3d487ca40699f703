"""Finding 15's install: the first `pip install` printed setuptools' license deprecation banner
three times. Building the project as pip does (an isolated build with the newest setuptools
that build-system allows) now prints no deprecation, and the wheel carries an SPDX license."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.fixtures.tools import REPO_ROOT


def test_building_the_wheel_warns_of_nothing_and_names_an_spdx_license(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: setuptools leaves build/ in the tree it builds
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for package in ("jobqueue", "worker", "controller"):
        shutil.copytree(REPO_ROOT / package, source / package)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert "deprecated" not in output.lower(), output
    (wheel,) = tmp_path.glob("job_queue-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(name).decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
