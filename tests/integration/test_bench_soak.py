"""docs/reliability.md's soak smoke, as a user runs it: `bench/bench_soak.py` end to end on a
server of its own (workers, offered load, an idle-transaction pin, the per-minute readings and
the goals' summary), so that the tool cannot rot between the long runs that quote it. Nothing
about speed is asserted: only that every reading is there."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from tests.fixtures.doc_examples import ROOT, run_bash_example


def test_the_soak_smoke_of_the_docs_runs() -> None:
    # `python` is this environment's, as for a user whose venv is active
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    done = run_bash_example("docs/reliability.md", "soak-smoke", env, ROOT, timeout=600)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    minutes = re.findall(r"^\s+(\d)\s+\d+\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+.*?(pinned)?$", out, re.M)
    assert minutes == [("1", ""), ("2", "pinned")], out
    assert "public.jobs" in out, out  # every table of ours, each minute
    for goal in ("worst pinned minute (2)", "p99 unpinned", "MB before the pin"):
        assert goal in out, out
