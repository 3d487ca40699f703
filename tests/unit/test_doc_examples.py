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
