"""Command-line guards: IN/OUT placement, option ranges, and only the model files a run loads."""

from __future__ import annotations

import hashlib
import shutil

from typer.testing import CliRunner

from faceanon.cli import app
from faceanon.models.loader import clear_cache, required_assets
from tests.support.lite_home import copy_home, lite_home  # noqa: F401 (fixture)


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_in_inside_out_is_refused_before_anything_is_written(tmp_path, photos_dir):
    out = tmp_path / "out"
    inp = out / "anonymized"  # e.g. re-running on the previous run's results, in place
    inp.mkdir(parents=True)
    shutil.copy(photos_dir / "kim3.jpg", inp / "kim3.jpg")
    before = hashlib.sha256((inp / "kim3.jpg").read_bytes()).hexdigest()
    r = _cli("run", inp, out)
    assert r.exit_code == 2 and "inside OUT" in r.output
    assert hashlib.sha256((inp / "kim3.jpg").read_bytes()).hexdigest() == before
    assert sorted(p.name for p in out.iterdir()) == ["anonymized"]
    r = _cli("reconstruct", inp / "kim3.jpg", out)  # a single input file inside OUT too
    assert r.exit_code == 2


def test_threshold_of_one_is_a_usage_error(tmp_path, photos_dir):
    r = _cli("run", photos_dir, tmp_path / "o", "--threshold", "1.0")
    assert r.exit_code == 2


def test_run_needs_only_the_files_the_model_loads(tmp_path, photos_dir, lite_home, monkeypatch):
    home = copy_home(lite_home, tmp_path / "home")  # a private copy: files get deleted below
    monkeypatch.setenv("FACEANON_HOME", str(home))
    monkeypatch.setenv("FACEANON_OFFLINE", "1")
    monkeypatch.delenv("FACEANON_ASSETS_MIRROR", raising=False)
    clear_cache()
    names = set(required_assets("lite"))
    assert "detectors/FaceBoxesProd.pth" not in names and "detectors/centerface.onnx" in names
    (home / "detectors" / "FaceBoxesProd.pth").unlink()  # a file the lite model never loads
    (home / "deep3d" / "similarity_Lm3D_all.mat").unlink()
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(photos_dir / "kim3.jpg", inp / "kim3.jpg")
    r = _cli("run", inp, tmp_path / "out", "--tex-size", "256", "--img-size", "128")
    assert r.exit_code == 0, r.output
    (home / "3ddfa_v2" / "mb05_120x120.pth").unlink()  # one it does load: refused up front, named
    clear_cache()
    r = _cli("run", inp, tmp_path / "out2")
    assert r.exit_code == 1 and "mb05_120x120.pth" in r.output and "faceanon assets download" in r.output
    clear_cache()
