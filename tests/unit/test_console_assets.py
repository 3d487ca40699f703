"""The wheel (and so the image, which installs it) carries the console's templates and
assets: the console works offline, with no build step."""

from __future__ import annotations

import fnmatch
import hashlib
import tomllib

from tests.fixtures.tools import REPO_ROOT

CONSOLE = REPO_ROOT / "worker" / "console"
# htmx 2.0.10's released htmx.min.js, as tools/vendor-htmx.sh takes it from a PyPI wheel
HTMX_SHA256 = "71ea67185bfa8c98c39d31717c6fce5d852370fcdfd129db4543774d3145c0de"


def test_vendored_htmx_is_the_released_file() -> None:
    data = (CONSOLE / "static" / "htmx.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256


def test_package_data_covers_every_template_and_asset() -> None:
    """setuptools puts into the wheel what [tool.setuptools.package-data] matches."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["worker.console"]
    files = [
        path.relative_to(CONSOLE).as_posix()
        for folder in ("templates", "static")
        for path in (CONSOLE / folder).iterdir()
    ]
    assert "static/htmx.min.js" in files and "templates/base.html" in files
    unmatched = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert not unmatched, f"add these to package-data: {unmatched}"
