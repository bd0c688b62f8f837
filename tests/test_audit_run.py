"""`faceanon run --audit`: the audit of the run's own output, at the end of the run."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

pytest.importorskip("dlib", reason="the audit extra is not installed: pip install 'faceanon[audit]'")

from faceanon.cli import app  # noqa: E402
from faceanon.models.loader import clear_cache  # noqa: E402
from tests.support.lite_home import lite_home  # noqa: E402,F401 (fixture)


def test_run_with_audit_writes_the_audit_of_every_face(tmp_path, lite_home, photos_dir, monkeypatch):
    monkeypatch.setenv("FACEANON_HOME", str(lite_home))
    monkeypatch.setenv("FACEANON_OFFLINE", "1")
    monkeypatch.delenv("FACEANON_ASSETS_MIRROR", raising=False)
    clear_cache()
    runner = CliRunner()
    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("alison1.jpg", "kim3.jpg"):
        shutil.copy(photos_dir / name, inp / name)
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(inp), str(out), "--audit", "--tex-size", "512", "--img-size", "256"])
    assert r.exit_code == 0, r.output  # no --fail-on-reid: re-identified faces are reported, not fatal
    audit = json.loads((out / "audit.json").read_text())
    rows = audit["rows"]
    assert sorted(row["stem"] for row in rows) == ["alison1", "kim3"]
    for row in rows:
        assert row["status"] == "ok"
        assert 0.0 < row["strong_composite_dist"] < 2.0
        assert row["eye_residual"] < 0.05  # the eyes were removed
    assert (out / "audit.csv").read_text().count("\n") == 3  # header + 2 faces
    assert "audit" in r.output.lower()
    clear_cache()
