"""docs/console/screenshots.py works: it takes every page's screenshot (into a temporary
folder here; `make screenshots` writes docs/console/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.browser import require_chromium
from tests.fixtures.tools import REPO_ROOT

SHOTS = ["login", "overview", "jobs", "job", "workers", "schedules", "scaling"]


def test_screenshots_script_takes_every_page(tmp_path: Path) -> None:
    env = {**os.environ, "JOBQUEUE_CHROMIUM": str(require_chromium())}
    script = REPO_ROOT / "docs" / "console" / "screenshots.py"
    subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)], check=True, timeout=300, env=env
    )
    for name in SHOTS:
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        # the committed copies the README shows exist too
        assert (script.parent / f"{name}.png").is_file(), name
