"""L0: the Dockerfile's basics (it cannot be built here; the kind suite builds it)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.chart.chart_support import chart_values
from tests.fixtures.tools import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def test_multi_stage_on_python_slim() -> None:
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest
    )
    bases = [rest.split()[0] for keyword, rest in instructions() if keyword == "FROM"]
    assert len(bases) >= 2
    for base in bases:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert resolved.startswith("python:3.11-slim"), resolved
    final = stages()[-1]
    assert any(k == "COPY" and rest.startswith("--from=") for k, rest in final), (
        "final stage copies the build"
    )
    assert not any(k == "RUN" and "pip install" in rest for k, rest in final), (
        "no build tools at runtime"
    )


def test_runs_as_the_non_root_user_the_chart_expects() -> None:
    [user] = [rest for keyword, rest in stages()[-1] if keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric uid, so runAsNonRoot can check it"
    security = chart_values()["podSecurityContext"]
    assert int(uid) == security["runAsUser"] and int(gid) == security["runAsGroup"]


def test_entrypoint_is_jobqueue() -> None:
    [entrypoint] = [rest for keyword, rest in instructions() if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["jobqueue"]
    assert (
        "jobqueue"
        in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    )


def test_exposes_the_chart_ports() -> None:
    [exposed] = [rest for keyword, rest in instructions() if keyword == "EXPOSE"]
    assert sorted(int(port) for port in exposed.split()) == [8001, 9100, 9200]


def test_installs_the_pinned_dependencies() -> None:
    runs = " ".join(rest for keyword, rest in instructions() if keyword == "RUN")
    assert "--requirement constraints.txt" in runs and "--no-deps" in runs
    assert "'.[all]'" in runs, "the image installs every extra a component needs"
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line} is not pinned with =="
            pins[canonicalize_name(name)] = version
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert extras["all"] == ["job-queue[api,controller,handlers]"]
    image = [*project["dependencies"], *extras["api"], *extras["controller"], *extras["handlers"]]
    for dependency in image:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in constraints.txt: run tools/pin-constraints.py"
        assert requirement.specifier.contains(pins[name]), (
            f"{name}=={pins[name]} breaks {requirement}"
        )


def test_copied_paths_exist_and_pass_the_dockerignore() -> None:
    ignore = [
        line
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "**", "allow-list: the build context holds only what the image needs"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for keyword, rest in instructions():
        if keyword != "COPY" or rest.startswith("--from="):
            continue
        *sources, _destination = shlex.split(rest)
        for source in sources:
            assert (REPO_ROOT / source).exists(), source
            # "." is the whole context, which the allow-list above already limits
            if source != ".":
                assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"


def test_dockerignore_lets_in_every_package_the_distribution_ships() -> None:
    """A package left out of the context would install a `jobqueue` that cannot import it."""
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    find = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {pattern.rstrip("*") for pattern in find["packages"]["find"]["include"]}
    assert packages <= allowed, packages - allowed


def test_chart_runs_the_image_with_a_read_only_root() -> None:
    """The image must not need to write outside /tmp and mounted volumes: no bytecode writes."""
    final_env = " ".join(rest for keyword, rest in stages()[-1] if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in final_env
    assert chart_values()["containerSecurityContext"]["readOnlyRootFilesystem"] is True


def test_the_image_can_be_extended_with_pip_as_the_docs_show() -> None:
    """Finding 10: `FROM job-queue` plus `pip install` failed: the runtime removed pip."""
    build = stages()[0]
    uninstalls = [rest for keyword, rest in build if keyword == "RUN" and "uninstall" in rest]
    assert all(" pip " not in f" {rest} ".replace("pip uninstall", "") for rest in uninstalls)
    handlers = (REPO_ROOT / "docs" / "handlers.md").read_text()
    (recipe,) = re.findall(r"```dockerfile\n(.*?)```", handlers, re.DOTALL)
    lines = [line.split("#")[0].strip() for line in recipe.splitlines()]
    assert lines[0].startswith("FROM job-queue:")
    assert lines.index("USER root") < next(
        i for i, line in enumerate(lines) if line.startswith("RUN pip install")
    )
    [user] = [rest for keyword, rest in stages()[-1] if keyword == "USER"]
    assert f"USER {user}" in lines  # back to the chart's uid after the install
    assert "ENV JOBQUEUE_HANDLER_MODULES=mycompany.jobs" in lines
