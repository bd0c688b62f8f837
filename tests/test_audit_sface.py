"""The second attacker, SFace (the ``faceanon[audit-sface]`` extra; the real-model tests skip without it).

Landmarks for the real photos come from dlib (the ``faceanon[audit]`` extra); those tests skip without it.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest

from faceanon.audit import attackers as A
from faceanon.audit import sface as SF
from faceanon.audit import synthetic as S

needs_sface = pytest.mark.skipif(not SF.available(), reason="the audit-sface extra is not installed: "
                                                            "pip install 'faceanon[audit-sface]'")


def test_five_points_are_eye_centres_nose_tip_and_mouth_corners_image_left_first():
    lm = S.crude_landmarks68(100, 100)
    p5 = SF.five_points(lm)
    assert p5.shape == (5, 2) and p5.dtype == np.float32
    assert np.allclose(p5[0], lm[36:42].mean(0)) and np.allclose(p5[1], lm[42:48].mean(0))
    assert np.allclose(p5[2], lm[30]) and np.allclose(p5[3], lm[48]) and np.allclose(p5[4], lm[54])
    assert p5[0, 0] < p5[1, 0] and p5[3, 0] < p5[4, 0]
    with pytest.raises(ValueError, match="landmarks68"):
        SF.five_points(lm[:5])


def test_without_the_extra_one_line_names_it(monkeypatch):
    monkeypatch.setattr(SF.importlib.util, "find_spec", lambda name, *a: None)
    SF.load.cache_clear()
    assert SF.available() is False
    assert "sface" not in A.installed()
    with pytest.raises(SF.SFaceMissing) as ei:
        A.load("sface")
    line = ei.value.one_line()
    assert "audit-sface" in line and "pip install 'faceanon[audit-sface]'" in line and "\n" not in line
    SF.load.cache_clear()


def test_cli_names_the_missing_extra(monkeypatch, tmp_path):
    pytest.importorskip("dlib", reason="the audit extra is not installed: pip install 'faceanon[audit]'")
    from typer.testing import CliRunner

    from faceanon.cli import app

    monkeypatch.setattr(SF.importlib.util, "find_spec", lambda name, *a: None)
    SF.load.cache_clear()
    (tmp_path / "face3d").mkdir()
    r = CliRunner().invoke(app, ["audit", str(tmp_path), "--attackers", "sface"])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "audit-sface" in lines[0]
    r = CliRunner().invoke(app, ["audit", str(tmp_path), "--attackers", "dlib,arcface9"])
    assert r.exit_code == 2 and "unknown attacker" in r.stderr and "arcface9" in r.stderr
    SF.load.cache_clear()


def test_a_model_file_with_other_bytes_is_refused(tmp_path):
    from faceanon.errors import AssetError

    bad = tmp_path / SF.MODEL_FILE
    bad.write_bytes(b"\x08\x01" * 100)
    with pytest.raises(AssetError, match="sha256"):
        SF.SFace(bad)


# -- the real model ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dlib_models():
    pytest.importorskip("dlib", reason="the audit extra is not installed: pip install 'faceanon[audit]'")
    from faceanon.audit.recognizer import AuditExtraMissing, load_models

    try:
        return load_models()
    except AuditExtraMissing as exc:
        pytest.skip(exc.one_line())


@pytest.fixture(scope="module")
def faces(photos_dir, dlib_models):
    from faceanon.audit.core import load_rgb

    out = {}
    for name in ("alison1.jpg", "barry12.jpg", "kim3.jpg"):
        rgb = load_rgb(photos_dir / name)
        (f,) = dlib_models.detect(rgb)
        out[name] = (rgb, f.landmarks68)
    return out


@needs_sface
def test_same_person_close_other_people_far(faces):
    from PIL import Image

    sf = SF.load()
    assert sf.name == "sface" and sf.threshold == pytest.approx(0.637)
    rgb, lm = faces["alison1.jpg"]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=40)  # a heavy re-encode of the same photo
    again = np.asarray(Image.open(buf).convert("RGB"))
    e = sf.embed(rgb, lm)
    assert e.shape == (128,) and abs(np.linalg.norm(e) - 1.0) < 1e-6
    assert sf.distance(e, sf.embed(rgb.copy(), lm)) < 1e-6
    assert sf.distance(e, sf.embed(again, lm)) < 0.1
    for other in ("barry12.jpg", "kim3.jpg"):
        assert sf.distance(e, sf.embed(*faces[other])) > sf.threshold
    assert np.isnan(sf.distance(e, None))
    crop = sf.aligned(rgb, lm)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8


@needs_sface
def test_sface_attacks_in_the_audit(tmp_path, photos_dir, faces, dlib_models):
    from faceanon.audit import run_audit

    rgb, lm = faces["alison1.jpg"]
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copyfile(photos_dir / "alison1.jpg", inp / "alison1.jpg")
    out = tmp_path / "out"
    face = S.FakeFace(landmarks68=lm, box=np.r_[lm.min(0), lm.max(0)].astype(np.float32),
                      labels=S.labels_from_landmarks(rgb.shape[:2], lm))
    S.write_report(out, [S.write_fake_image(out, "alison1", inp / "alison1.jpg", None, [face],
                                            composite_file=inp / "alison1.jpg")])
    res = run_audit(out, None, 0.6, models=dlib_models, attackers=[SF.load()], write=False)
    assert res.attackers == ["dlib", "sface"]
    (row,) = res.rows
    sf = {a.attacker: a for a in res.attacks}["sface"]
    assert sf.composite_dist < 1e-6 and sf.composite_reid is True
    assert sf.eraser_dist > sf.threshold and sf.eraser_reid is False and sf.reid_beyond_eraser is True
    assert row.reid_beyond_eraser_by == "dlib+sface"
    assert res.by_pose()["all"]["sface_reid_beyond_eraser"] == 1
