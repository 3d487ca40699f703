"""`jobqueue dev --handlers PATH`: your own handlers, from a module file, a package, or a folder
of modules, without PYTHONPATH and JOBQUEUE_HANDLER_MODULES by hand. Every module is imported
here first, so a broken one stops the stack with its real cause on the terminal, not in a
child's log."""

from __future__ import annotations

import importlib
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path


class HandlersError(Exception):
    """The path or a module is wrong; the message says what, with the import's traceback."""


@dataclass(frozen=True)
class HandlerSource:
    path_entry: str  # what PYTHONPATH needs, so that the modules import by name
    modules: list[str]


def find_handlers(path: Path) -> HandlerSource:
    """A `.py` file is one module; a folder with `__init__.py` is a package; any other folder
    holds modules, one per `.py` file (files starting with `_` left out)."""
    path = path.expanduser().resolve()
    if path.is_file():
        if path.suffix != ".py":
            raise HandlersError(f"--handlers {path}: not a .py file or a folder")
        return HandlerSource(str(path.parent), [path.stem])
    if path.is_dir():
        if (path / "__init__.py").exists():
            return HandlerSource(str(path.parent), [path.name])
        modules = sorted(p.stem for p in path.glob("*.py") if not p.name.startswith("_"))
        if not modules:
            raise HandlersError(f"--handlers {path}: the folder holds no .py module")
        return HandlerSource(str(path), modules)
    raise HandlersError(f"--handlers {path}: no such file or folder")


def _user_frames(exc: BaseException) -> str:
    """The traceback without importlib's own frames: what the user's module did."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<frozen importlib") and frame.name != "check_imports"
    ]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip("\n")


def check_imports(modules: list[str], path_entries: list[str]) -> None:
    """Import each module as the API and the workers will; HandlersError with the cause."""
    from worker.handlers.base import OWN_PACKAGES  # the built-ins first, as workers load them

    for name in modules:
        if name.split(".")[0] in OWN_PACKAGES:  # it would shadow ours in the API and workers
            raise HandlersError(
                f"handler module {name!r} has the name of job-queue's own package: rename it "
                "(tasks.py, say)"
            )
    for entry in reversed(path_entries):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # any error in the module's own code, not only ImportError
            raise HandlersError(
                f"handler module {name!r} cannot be imported:\n{_user_frames(exc)}"
            ) from None
