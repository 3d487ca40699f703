"""L5 building block: `make image` builds our image with no registry, and the image runs under
the chart's rules (read-only root, uid 10001, no capabilities, no network).

It needs root and apt (for docker.io and debootstrap) or a running dockerd; elsewhere it skips,
and under JOBQUEUE_REQUIRE_K8S=1 (CI) it fails instead."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.fixtures.tools import REPO_ROOT, missing


def test_make_image_builds_an_image_that_runs_under_the_chart_rules() -> None:
    can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if not (can_install or shutil.which("dockerd") or shutil.which("docker")):
        missing("no container engine here and no root apt to install docker.io")
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "build-image.sh")],
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    image = out.stdout.strip().splitlines()[-1]
    assert image.startswith("job-queue:"), out.stdout
    assert "image size:" in out.stderr
    assert f"checking that {image} runs under the chart's rules" in out.stderr
    # FROM the image, pip install a handlers package (docs/handlers.md), and it loads
    assert f"checking that {image} can be extended: FROM {image}, pip install" in out.stderr
