"""The built helm works: version and template."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.chart.chart_support import pinned


def test_helm_version_is_pinned(helm_bin: Path) -> None:
    out = subprocess.run(
        [str(helm_bin), "version", "--short"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().startswith(pinned("HELM_VERSION"))


def test_helm_template_renders(helm_bin: Path, tmp_path: Path) -> None:
    chart = tmp_path / "smoke"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: smoke\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    out = subprocess.run(
        [str(helm_bin), "template", "demo", str(chart), "--set", "greeting=hi"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "name: demo-cm" in out.stdout
    assert 'greeting: "hi"' in out.stdout
