"""The `jobqueue` command handles SIGTERM before it imports anything that takes time.

It is every container's PID 1, and the kernel drops a signal whose action is still the default
when it is sent to a namespace's PID 1. jobqueue.entry installs its handler first thing, but
Python imports the `jobqueue` package before it: when that package imported the worker's modules
(a quarter of a second here, seconds on a busy node), a worker pod scaled down as it started
lost its SIGTERM and ran on until the kubelet's SIGKILL (the kind suite's exit 137). The console
script's own import runs here with `python -X importtime`: before the handler exists, only the
interpreter's modules and jobqueue's two small ones may load.
"""

from __future__ import annotations

import subprocess
import sys

# What may load before jobqueue.entry.main runs: the package's shadowing guard (it finds
# specs, imports nothing of ours) and the entry module itself.
OURS_ALLOWED = {"jobqueue", "jobqueue.guard", "jobqueue.entry"}


def imported_by(statement: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [
        line.split("|")[-1].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and not line.rstrip().endswith("package")
    ]


def is_stdlib_or_site(module: str) -> bool:
    top = module.split(".")[0]
    # the interpreter's start-up hooks (site's customize modules, an editable install's
    # finder, setuptools' shim): they run before any code of ours, whatever it imports
    startup = ("sitecustomize", "usercustomize", "__editable__", "_distutils_hack")
    return top in sys.stdlib_module_names or top.startswith(startup)


def test_the_console_script_imports_nothing_slow_before_its_sigterm_handler() -> None:
    # what the generated `jobqueue` script does before it calls main()
    modules = imported_by("from jobqueue.entry import main")
    assert "jobqueue.entry" in modules, modules
    slow = [m for m in modules if m not in OURS_ALLOWED and not is_stdlib_or_site(m)]
    assert slow == [], f"imported before the SIGTERM handler: {slow}"


def test_the_public_names_still_load_on_first_use() -> None:
    code = (
        "import jobqueue, sys\n"
        "assert 'worker' not in sys.modules\n"
        "names = [getattr(jobqueue, n) for n in jobqueue.__all__]\n"
        "assert jobqueue.JobContext.__module__ == 'worker.handlers.base'\n"
        "from jobqueue import InvalidJob, registry, task\n"
        "print(len(names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(__import__("jobqueue").__all__))
