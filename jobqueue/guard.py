"""Stop, with one line, when a module of the user's shadows one of job-queue's internal
packages, `worker` and `controller`.

They are top-level packages (the repository's layout asks for them), so an application with
its own `worker.py` or `controller/` on sys.path before ours would hand our code its module,
and our imports would fail far away with confusing errors. `import jobqueue` checks first,
without importing either package, and names the file that is in the way.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

INTERNAL = ("worker", "controller")
_HOME = Path(__file__).resolve().parent.parent  # where jobqueue/, worker/ and controller/ are


class ShadowedPackage(ImportError):
    """A foreign module stands where one of our internal packages should be. (Not a
    JobQueueError: that class lives in `worker`, which cannot be imported in this case.)"""


def _found_at(name: str) -> str | None:
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    spec = find_spec(name)  # a top-level name: nothing is imported to find it
    return None if spec is None else spec.origin


def shadowing(name: str) -> str | None:
    """The file that shadows our package `name`, or None when ours is the one found."""
    found = _found_at(name)
    ours = _HOME / name / "__init__.py"
    if found is None or Path(found).resolve() == ours:
        return None
    return found


def check() -> None:
    for name in INTERNAL:
        found = shadowing(name)
        if found is not None:
            raise ShadowedPackage(
                f"{found} shadows job-queue's internal package {name!r} "
                f"({_HOME / name}): rename that module, or run from another directory"
            )


def running_the_command() -> bool:
    """Whether this process is the `jobqueue` (or `kubectl-jobqueue`) command, which reports
    a problem as one line rather than a traceback."""
    if Path(sys.argv[0]).name in ("jobqueue", "kubectl-jobqueue"):
        return True
    argv = list(getattr(sys, "orig_argv", []))
    return "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "jobqueue"


def check_or_exit() -> None:
    """`check()`; the command prints the one line and exits 2 instead of raising."""
    try:
        check()
    except ShadowedPackage as exc:
        if not running_the_command():
            raise
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
