"""Imports flow one way: jobqueue -> controller -> worker. This walks every module's imports
(with ast, so nothing is executed) and names each edge that points back up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# a layer may import the layers after it in this list, never those before it
LAYERS = ("jobqueue", "controller", "worker")
# `python -m worker` is the seed's spelling of the `jobqueue` command: an entry script that
# nothing imports, so it may start the application layer.
ENTRY_SHIMS = {"worker/__main__.py"}


def _imported_modules(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return found


def edges_against_direction(root: Path) -> list[str]:
    bad: list[str] = []
    for layer in LAYERS:
        for path in sorted((root / layer).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel in ENTRY_SHIMS:
                continue
            module = rel.removesuffix(".py").replace("/", ".")
            for lineno, target in _imported_modules(ast.parse(path.read_text()), module):
                top = target.split(".")[0]
                if top in LAYERS and LAYERS.index(top) < LAYERS.index(layer):
                    bad.append(f"{rel}:{lineno}: {module} -> {target}")
    return bad


def test_imports_flow_jobqueue_controller_worker() -> None:
    bad = edges_against_direction(REPO_ROOT)
    assert not bad, "imports against jobqueue -> controller -> worker:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("layer", "source", "expected"),
    [
        ("worker", "from controller.policy import decide\n", "worker.mod -> controller.policy"),
        ("worker", "import jobqueue.cli\n", "worker.mod -> jobqueue.cli"),
        ("controller", "def f():\n    from jobqueue import cli\n", "controller.mod -> jobqueue"),
    ],
)
def test_an_edge_against_the_direction_is_named(
    tmp_path: Path, layer: str, source: str, expected: str
) -> None:
    for name in LAYERS:
        (tmp_path / name).mkdir()
    (tmp_path / layer / "mod.py").write_text(source)
    bad = edges_against_direction(tmp_path)
    assert len(bad) == 1 and bad[0].endswith(expected), bad


def test_edges_down_the_direction_pass(tmp_path: Path) -> None:
    for name in LAYERS:
        (tmp_path / name).mkdir()
    (tmp_path / "jobqueue" / "a.py").write_text("import controller.main\nimport worker.db\n")
    (tmp_path / "controller" / "b.py").write_text("from worker.settings import Settings\n")
    (tmp_path / "worker" / "c.py").write_text("from . import settings\nimport asyncpg\n")
    assert edges_against_direction(tmp_path) == []


# Inside a layer: modules that must not reach into the API package (the checks they share with
# it live in worker/job_checks.py, worker/db/statuses.py).
API_FREE = (
    "jobqueue/cli_jobs.py",
    "jobqueue/cli_enqueue.py",
    "worker/job_checks.py",
    "worker/db",
    "worker/handlers",
)


def test_the_cli_the_checks_and_the_data_layer_do_not_import_the_api() -> None:
    bad = []
    for entry in API_FREE:
        target = REPO_ROOT / entry
        for path in [target] if target.is_file() else sorted(target.rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            module = rel.removesuffix(".py").replace("/", ".")
            for lineno, imported in _imported_modules(ast.parse(path.read_text()), module):
                if imported == "worker.api" or imported.startswith("worker.api."):
                    bad.append(f"{rel}:{lineno}: {module} -> {imported}")
    assert not bad, "\n".join(bad)
