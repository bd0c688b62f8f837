"""`faceanon audit` without the optional extra: one line with the install command, exit 1 (no dlib needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]


def _block_dlib(monkeypatch):
    import faceanon.audit.recognizer as rec

    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` now raises ImportError
    rec.load_models.cache_clear()


def test_audit_without_dlib_prints_one_install_line(monkeypatch, tmp_path):
    from faceanon.cli import app

    _block_dlib(monkeypatch)
    (tmp_path / "face3d").mkdir()
    res = CliRunner().invoke(app, ["audit", str(tmp_path)])
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    assert "pip install 'faceanon[audit]'" in lines[0] and "pipx inject" in lines[0]
    assert res.stdout.strip() == ""
    assert not (tmp_path / "audit.json").exists()


def test_run_audit_api_without_dlib_raises_the_extra_error(monkeypatch, tmp_path):
    import pytest

    from faceanon.audit import AuditExtraMissing, run_audit

    _block_dlib(monkeypatch)
    with pytest.raises(AuditExtraMissing) as ei:
        run_audit(tmp_path, None, 0.6)
    assert ei.value.exit_code == 1 and "faceanon[audit]" in ei.value.one_line()


def test_missing_model_folder_is_named(monkeypatch, tmp_path):
    import pytest

    from faceanon.audit.recognizer import find_model_file
    from faceanon.errors import AssetError

    monkeypatch.setenv("FACEANON_DLIB_MODELS", str(tmp_path))
    with pytest.raises(AssetError, match="shape_predictor_68_face_landmarks.dat"):
        find_model_file("shape_predictor_68_face_landmarks.dat")


def test_help_works_without_dlib_and_does_not_import_it():
    code = (
        "import sys\n"
        "sys.modules['dlib'] = None\n"
        "sys.modules['face_recognition_models'] = None\n"
        "from typer.testing import CliRunner\n"
        "from faceanon.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'audit' in r.output\n"
        "r = CliRunner().invoke(app, ['audit', '--help'], terminal_width=200)\n"
        "assert 'RUN_OUT' in r.output and '--fail-on-reid' in r.output, r.output\n"
        "print('ok')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().endswith("ok")
    # importing the CLI does not load dlib even when it is installed
    p = subprocess.run([sys.executable, "-c", "import sys, faceanon.cli, faceanon.cli.audit_cmd, faceanon.audit; "
                        "print('dlib' in sys.modules)"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"
