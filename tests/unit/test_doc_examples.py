"""The doc-example extractor itself: what counts as an example, and what does not."""

from __future__ import annotations

import pytest

from tests.fixtures import doc_examples


def test_only_blocks_marked_test_are_examples(tmp_path, monkeypatch) -> None:
    doc = tmp_path / "d.md"
    doc.write_text(
        "```bash\necho plain\n```\n\n```bash test first\necho one\n```\n\n"
        "```python test\nprint(2)\n```\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(doc_examples, "ROOT", tmp_path)
    found = doc_examples.examples("d.md")
    assert [(e.language, e.name, e.code) for e in found] == [
        ("bash", "first", "echo one\n"),
        ("python", "", "print(2)\n"),
    ]
    assert [e.code for e in doc_examples.examples("d.md", "python")] == ["print(2)\n"]
    assert doc_examples.example("d.md", "first").code == "echo one\n"
    with pytest.raises(AssertionError, match="missing"):
        doc_examples.example("d.md", "missing")


# docs/autoscaling.md tries the controller's pure policy functions themselves, for operators
# who tune it: a look inside, not application code.
INSIDE_LOOKS = {"docs/autoscaling.md"}


def test_python_in_the_docs_imports_only_jobqueue() -> None:
    """Users import `jobqueue`; `worker` and `controller` are internal (docs/python.md)."""
    import re
    from pathlib import Path

    root = Path(doc_examples.ROOT)
    internal = re.compile(r"^\s*(?:from|import)\s+(?:worker|controller)\b.*$", re.MULTILINE)
    fence = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
    docs = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    bad = [
        f"{path.relative_to(root)}: {line.strip()}"
        for path in docs
        if path.relative_to(root).as_posix() not in INSIDE_LOOKS
        for block in fence.findall(path.read_text())
        for line in internal.findall(block)
    ]
    assert not bad, "\n".join(bad)
