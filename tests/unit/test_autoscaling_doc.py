"""docs/autoscaling.md's examples run as written, and the README's annotations table lists
every annotation the controller reads."""

from __future__ import annotations

import pytest

from controller import annotations as ann
from tests.fixtures.doc_examples import ROOT, examples

DOC = "docs/autoscaling.md"


@pytest.mark.parametrize("example", examples(DOC, "python"), ids=lambda e: e.name)
def test_python_examples_run(example) -> None:
    exec(compile(example.code, f"{DOC}:{example.name}", "exec"), {})


def test_readme_table_names_every_configuring_annotation() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [key for key in ann.CONFIG_ANNOTATIONS if f"`{key}`" not in readme]
    assert not missing
