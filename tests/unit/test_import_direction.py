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
    "jobqueue/cli_checks.py",
    "jobqueue/cli_jobs.py",
    "jobqueue/cli_enqueue.py",
    "jobqueue/cli_schedules.py",
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


# Inside worker/: each part (a subpackage, or a top-level module) may import only the parts of
# later rows, never its own row's others or an earlier row's. Every import counts, those inside
# functions too: a cycle hidden in a function (db/jobs -> job_checks -> handlers ->
# handlers/periodic -> db/schedules -> db/jobs, and api <-> console) is still a cycle.
WORKER_ROWS = (
    ("api",),
    ("console", "runtime", "client"),
    ("handlers", "tracing"),
    ("db",),
    ("job_checks", "scopes", "ticks", "ages", "logs"),
    ("errors", "settings"),
    ("settings_base",),
)


def _worker_part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "worker" and len(parts) > 1 else None


def worker_edges_against_rows(root: Path) -> list[str]:
    row_of = {part: index for index, row in enumerate(WORKER_ROWS) for part in row}
    bad: list[str] = []
    for path in sorted((root / "worker").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in ENTRY_SHIMS or rel == "worker/__init__.py":
            continue
        module = rel.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        source = _worker_part(module)
        if source not in row_of:
            bad.append(f"{rel}: worker.{source} has no row in WORKER_ROWS")
            continue
        for lineno, target in _imported_modules(ast.parse(path.read_text()), module):
            part = _worker_part(target)
            if part is None or part == source:
                continue
            if part not in row_of:
                bad.append(f"{rel}:{lineno}: worker.{part} has no row in WORKER_ROWS")
            elif row_of[part] <= row_of[source]:
                bad.append(f"{rel}:{lineno}: worker.{source} -> {target}")
    return bad


def test_imports_inside_worker_flow_down_its_rows() -> None:
    bad = worker_edges_against_rows(REPO_ROOT)
    assert not bad, "imports against worker's rows:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "db/jobs.py",
            "def f():\n    from worker.handlers import registry\n",
            "db -> worker.handlers",
        ),
        ("console/pages.py", "from worker.api.state import State\n", "console -> worker.api.state"),
        ("runtime/loop.py", "import worker.client\n", "runtime -> worker.client"),
    ],
)
def test_an_edge_up_or_across_a_row_is_named(
    tmp_path: Path, module: str, source: str, expected: str
) -> None:
    target = tmp_path / "worker" / module
    target.parent.mkdir(parents=True)
    target.write_text(source)
    bad = worker_edges_against_rows(tmp_path)
    assert len(bad) == 1 and bad[0].endswith(expected), bad
