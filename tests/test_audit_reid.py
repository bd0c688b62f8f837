"""Re-identification with the real dlib models (the ``faceanon[audit]`` extra; skipped without it).

Fake run outputs are built at test time from the fixture photos: landmarks from dlib's own detector and
shape predictor on the original, part labels from the filled landmark polygons
(:mod:`faceanon.audit.synthetic`), so nothing here depends on the reconstruction pipeline.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

dlib = pytest.importorskip("dlib", reason="the audit extra is not installed: pip install 'faceanon[audit]'")

from faceanon.audit import read_audit_csv, read_audit_json, rows_equal, run_audit  # noqa: E402
from faceanon.audit import synthetic as S  # noqa: E402
from faceanon.audit.core import load_rgb  # noqa: E402
from faceanon.audit.recognizer import embedding_distance  # noqa: E402


@pytest.fixture(scope="session")
def models():
    from faceanon.audit.recognizer import AuditExtraMissing, load_models

    try:
        return load_models()
    except AuditExtraMissing as exc:  # dlib without the model package
        pytest.skip(exc.one_line())


@pytest.fixture(scope="session")
def originals(photos_dir, tmp_path_factory):
    """IN folder holding copies of two fixture photos."""
    d = tmp_path_factory.mktemp("in")
    for name in ("alison1.jpg", "barry12.jpg"):
        shutil.copyfile(photos_dir / name, d / name)
    return d


def _one_face(models, photo):
    """(rgb, the one FakeFace dlib finds in ``photo``)."""
    rgb = load_rgb(photo)
    faces = S.fake_faces_from_dlib(models, rgb)
    assert len(faces) == 1
    return rgb, faces[0]


@pytest.fixture(scope="session")
def alison(models, originals):
    return _one_face(models, originals / "alison1.jpg")


@pytest.fixture(scope="session")
def barry(models, originals):
    return _one_face(models, originals / "barry12.jpg")


def _face(face: S.FakeFace, render=None) -> S.FakeFace:
    return S.FakeFace(landmarks68=face.landmarks68, box=face.box, labels=face.labels, render=render, score=face.score)


@pytest.fixture(scope="session")
def run_same(tmp_path_factory, originals, alison):
    """The 'anonymized' photo is the original itself; the render is a crop of the original face."""
    rgb, face = alison
    out = tmp_path_factory.mktemp("run_same")
    e = S.write_fake_image(out, "alison1", originals / "alison1.jpg", None,
                           [_face(face, S.face_crop_rgba(rgb, face.landmarks68))],
                           composite_file=originals / "alison1.jpg")
    S.write_report(out, [e])
    return out


@pytest.fixture(scope="session")
def run_grey(tmp_path_factory, originals, alison):
    """The face (every labelled pixel) replaced by one flat grey; the render is a flat grey square."""
    rgb, face = alison
    out = tmp_path_factory.mktemp("run_grey")
    e = S.write_fake_image(out, "alison1", originals / "alison1.jpg", S.grey_out(rgb, face.labels),
                           [_face(face, np.full((300, 300, 4), 128, np.uint8))])
    S.write_report(out, [e])
    return out


# -- the embedding itself ----------------------------------------------------------------------------
def test_a_photo_against_itself_is_distance_zero(models, alison):
    rgb, face = alison
    d = embedding_distance(models.embed(rgb, face.landmarks68), models.embed(rgb.copy(), face.landmarks68))
    assert d < 1e-6
    assert d < 0.6


def test_two_different_people_are_far_apart(models, alison, barry):
    d = embedding_distance(models.embed(alison[0], alison[1].landmarks68), models.embed(barry[0], barry[1].landmarks68))
    assert d > 0.6


def test_same_person_with_fresh_vs_known_landmarks_is_close(models, alison):
    rgb, face = alison
    shifted = face.landmarks68 + np.array([1.0, -1.0])  # a slightly different alignment still matches
    assert embedding_distance(models.embed(rgb, face.landmarks68), models.embed(rgb, shifted)) < 0.3


def test_embed_checks_its_arguments(models, alison):
    rgb, face = alison
    with pytest.raises(ValueError, match="landmarks68"):
        models.embed(rgb, face.landmarks68[:5])
    with pytest.raises(ValueError, match="image"):
        models.embed(rgb.astype(np.float32), face.landmarks68)


# -- whole audits --------------------------------------------------------------------------------------
def test_unchanged_photo_is_reidentified(run_same, models):
    res = run_audit(run_same, None, 0.6, models=models, write=False)
    (row,) = res.rows
    assert row.status == "ok", row.error
    assert row.strong_composite_dist < 1e-6 and row.strong_composite_reid is True
    assert row.strong_render_dist < 0.6 and row.strong_render_reid is True
    assert row.weak_original_detected and row.weak_composite_detected and row.weak_composite_reid
    assert row.reidentified is True
    assert row.eye_residual == 1.0 and row.mouth_residual == 1.0
    assert row.skin_de_mean == 0.0 and row.skin_de_median == 0.0
    assert row.eye_pixels > 100 and row.skin_pixels > 10_000
    assert row.backend == "synthetic" and row.face_index == 0 and row.face_count == 1
    # the photo with the face box painted grey is not re-identified: the match is beyond the eraser baseline
    assert row.eraser_dist > 0.6 and row.eraser_reid is False
    assert row.reid_beyond_eraser is True and row.reid_beyond_eraser_by.split("+")[0] == "dlib"
    assert row.eye_residual_moved == 1.0 and row.skin_mean_colour_de == 0.0 and row.far_changed == 0.0
    assert row.pose_source == "fit" and row.pose_bucket == "<30"  # the fake npz's pose is (0, 0, 0)
    (dl,) = [a for a in res.attacks if a.attacker == "dlib"]
    assert dl.composite_dist == row.strong_composite_dist and dl.eraser_dist == row.eraser_dist
    assert res.exit_code(fail_on_reid=True) == 3


def test_threshold_is_applied(run_same, models):
    (row,) = run_audit(run_same, None, 1e-9, models=models, write=False).rows
    assert row.strong_render_reid is False  # the crop is close but not identical
    assert row.strong_composite_reid is (row.strong_composite_dist < 1e-9)


def test_grey_face_is_not_reidentified_and_its_skin_changed(run_grey, models):
    res = run_audit(run_grey, None, 0.6, models=models, write=False)
    (row,) = res.rows
    assert row.status == "ok", row.error
    assert row.strong_composite_dist > 0.6 and row.strong_composite_reid is False
    assert math.isnan(row.strong_render_dist) and "no face" in row.render_note
    assert row.weak_render_detected is False and row.weak_render_reid is False
    assert row.weak_composite_reid is False  # not detected counts as not re-identified
    assert row.reidentified is False
    assert row.skin_de_mean > 10 and row.skin_de_median > 10
    assert row.eye_residual < 0.05 and row.mouth_residual < 0.05
    assert row.eye_residual_moved < 0.05  # a flat grey keeps no eye pixel at any shift
    assert row.reid_beyond_eraser is False and row.eraser_reid is False
    assert res.exit_code(fail_on_reid=True) == 0


def test_a_face_the_run_missed_is_reported(tmp_path, originals, models):
    out = tmp_path / "run"
    e = S.write_fake_image(out, "alison1", originals / "alison1.jpg", None, [], composite_file=originals / "alison1.jpg")
    e["faces"] = 0
    S.write_report(out, [e])
    res = run_audit(out, None, 0.6, models=models, write=False)
    (row,) = res.rows
    assert row.status == "missed_face" and row.face == -1
    assert row.weak_composite_dist < 1e-6 and row.reidentified is True
    assert res.exit_code(fail_on_reid=True) == 3


def test_missing_original_is_an_error_row(tmp_path, originals, alison, models):
    out = tmp_path / "run"
    e = S.write_fake_image(out, "alison1", originals / "alison1.jpg", None, [_face(alison[1])],
                           composite_file=originals / "alison1.jpg")
    e["input"] = str(tmp_path / "moved" / "alison1.jpg")
    S.write_report(out, [e])
    (row,) = run_audit(out, None, 0.6, models=models, write=False).rows
    assert row.status == "error" and "original not found" in row.error
    # --originals finds it by stem
    (row,) = run_audit(out, originals, 0.6, models=models, write=False).rows
    assert row.status == "ok" and row.reidentified is True


def test_json_csv_round_trip(run_grey, run_same, models, tmp_path):
    for run in (run_same, run_grey):
        res = run_audit(run, None, 0.6, models=models)
        assert Path(res.json_path) == run / "audit.json" and Path(res.csv_path) == run / "audit.csv"
        assert rows_equal(read_audit_json(run / "audit.json"), res.rows)
        assert rows_equal(read_audit_csv(run / "audit.csv"), res.rows)
        data = json.loads((run / "audit.json").read_text())
        assert data["summary"]["faces"] == 1


# -- the command -------------------------------------------------------------------------------------
def _cli(*args):
    from typer.testing import CliRunner

    from faceanon.cli import app

    return CliRunner().invoke(app, ["audit", *map(str, args)], terminal_width=200)


def test_cli_fail_on_reid_exit_codes(run_same, run_grey, models):
    r = _cli(run_same, "--fail-on-reid")
    assert r.exit_code == 3, r.output
    assert "YES" in r.stdout and "alison1" in r.stdout
    r = _cli(run_same)
    assert r.exit_code == 0, r.output
    r = _cli(run_grey, "--fail-on-reid")
    assert r.exit_code == 0, r.output
    assert "no face detected in the render" in r.stdout
    assert "by pose" in r.stdout and "below 30°" in r.stdout


def test_cli_raw_reid_and_attackers_examples(run_same, run_grey, models):
    r = _cli(run_same, "--fail-on-reid", "--raw-reid")
    assert r.exit_code == 3, r.output
    r = _cli(run_grey, "--fail-on-reid", "--raw-reid")
    assert r.exit_code == 0, r.output
    r = _cli(run_same, "--attackers", "dlib")
    assert r.exit_code == 0, r.output
    assert "audit (dlib):" in r.stdout and "sface" not in r.stdout
    assert json.loads((run_same / "audit.json").read_text())["attackers"] == ["dlib"]


def test_cli_writes_where_asked(run_grey, tmp_path, models):
    j, c = tmp_path / "x" / "a.json", tmp_path / "y" / "a.csv"
    r = _cli(run_grey, "--json", j, "--csv", c, "--threshold", "0.5")
    assert r.exit_code == 0, r.output
    rows = read_audit_json(j)
    assert rows_equal(rows, read_audit_csv(c))
    assert json.loads(j.read_text())["threshold"] == 0.5


def test_cli_error_exit_1(tmp_path, originals, alison, models):
    out = tmp_path / "run"
    e = S.write_fake_image(out, "alison1", originals / "alison1.jpg", None, [_face(alison[1])],
                           composite_file=originals / "alison1.jpg")
    e["input"] = str(tmp_path / "moved.jpg")
    S.write_report(out, [e])
    r = _cli(out)
    assert r.exit_code == 1, r.output
    assert "original not found" in r.stdout
    assert (out / "audit.json").is_file()  # the rows are written even so
    r = _cli(tmp_path / "nothing-here")
    assert r.exit_code == 2 and "not a folder" in r.stderr


@pytest.fixture(scope="session")
def two_people(tmp_path_factory, alison, barry):
    """One photo with alison on the left and barry on the right (both padded to the same height)."""
    (a, _fa), (b, _fb) = alison, barry
    h = max(a.shape[0], b.shape[0])
    pad = lambda x: np.pad(x, ((0, h - x.shape[0]), (0, 0), (0, 0)), mode="edge")  # noqa: E731
    rgb = np.concatenate([pad(a), pad(b)], axis=1)
    d = tmp_path_factory.mktemp("in2")
    from PIL import Image

    Image.fromarray(rgb).save(d / "pair.png")
    return d / "pair.png", rgb


def test_two_faces_one_image(tmp_path, two_people, models):
    path, rgb = two_people
    faces = sorted(S.fake_faces_from_dlib(models, rgb), key=lambda f: f.box[0])
    assert len(faces) == 2
    # main face = barry (right) anonymized; face1 = alison (left) left untouched
    barry_f, alison_f = faces[1], faces[0]
    composite = S.grey_out(rgb, barry_f.labels)
    out = tmp_path / "run"
    S.write_report(out, [S.write_fake_image(out, "pair", path, composite, [_face(barry_f), _face(alison_f)])])
    assert (out / "face3d" / "pair" / "pair_face1_projections.npz").is_file()
    res = run_audit(out, None, 0.6, models=models, write=False)
    assert [(r.face, r.status) for r in res.rows] == [(0, "ok"), (1, "ok")]
    main, other = res.rows
    assert main.face_index == 0 and other.face_index == 1 and main.face_count == 2
    assert main.reidentified is False and main.strong_composite_dist > 0.6
    assert other.reidentified is True and other.strong_composite_dist < 1e-6
    assert other.weak_composite_detected and other.weak_composite_dist < 1e-6
    assert other.eye_residual == 1.0 and main.eye_residual < 0.05


def test_face_the_run_did_not_reconstruct_in_a_two_face_image(tmp_path, two_people, models):
    path, rgb = two_people
    faces = sorted(S.fake_faces_from_dlib(models, rgb), key=lambda f: f.box[0])
    barry_f = faces[1]
    out = tmp_path / "run"
    S.write_report(out, [S.write_fake_image(out, "pair", path, S.grey_out(rgb, barry_f.labels), [_face(barry_f)])])
    res = run_audit(out, None, 0.6, models=models, write=False)
    assert [(r.face, r.status) for r in res.rows] == [(0, "ok"), (-1, "missed_face")]
    missed = res.rows[1]
    assert missed.reidentified is True and missed.weak_composite_dist < 1e-6
    assert "did not anonymize" in missed.error
    assert res.summary()["missed_faces"] == 1


def test_installed_entry_point_smoke(run_same, tmp_path):
    import shutil as _sh
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "faceanon"
    exe = exe if exe.is_file() else (Path(_sh.which("faceanon")) if _sh.which("faceanon") else None)
    if exe is None:
        pytest.skip("the faceanon entry point is not installed in this environment")
    j = tmp_path / "a.json"
    p = subprocess.run([str(exe), "audit", str(run_same), "--fail-on-reid", "--json", str(j), "--csv",
                        str(tmp_path / "a.csv")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 3, p.stderr
    assert "YES" in p.stdout
    assert read_audit_json(j)[0].reidentified is True
