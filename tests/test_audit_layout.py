"""Run-output discovery, pixel residuals and audit.json/audit.csv serialisation (no dlib needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from faceanon.audit import layout
from faceanon.audit.color import ciede2000, srgb_to_lab
from faceanon.audit.core import AuditResult, FaceAudit, read_audit_csv, read_audit_json, rows_equal
from faceanon.audit.metrics import face_region_stats, region_delta_e
from faceanon.audit.synthetic import labels_from_landmarks
from faceanon.errors import FaceanonError, UsageError


def touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def report(run_out: Path, entries) -> None:
    touch(run_out / "report.json", json.dumps({"images": entries}).encode())


# -- layout ------------------------------------------------------------------------------------------
def test_faces_are_ordered_main_first_and_numerically(tmp_path):
    out = tmp_path / "out"
    for name in ("p_face10", "p_face2", "p", "p_face1"):
        touch(out / "face3d" / "p" / f"{name}_projections.npz")
    touch(out / "face3d" / "p" / "p_extractTex.obj")
    touch(out / "render" / "p_front.png")
    touch(out / "render" / "p_face2_front.png")
    faces = layout.face_files(out, "p")
    assert [f.k for f in faces] == [0, 1, 2, 10]
    assert faces[0].render == out / "render" / "p_front.png"
    assert faces[1].render is None
    assert faces[2].render == out / "render" / "p_face2_front.png"


def test_a_stem_ending_in_face1_is_its_own_main_face(tmp_path):
    out = tmp_path / "out"
    touch(out / "face3d" / "x_face1" / "x_face1_projections.npz")
    touch(out / "face3d" / "x" / "x_projections.npz")
    touch(out / "face3d" / "x" / "x_face1_projections.npz")
    assert [f.k for f in layout.face_files(out, "x_face1")] == [0]
    assert [f.k for f in layout.face_files(out, "x")] == [0, 1]


def test_collision_stems_find_their_original_by_extension(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    touch(inp / "a.jpg")
    touch(inp / "a.png")
    for stem in ("a_jpg", "a_png"):
        touch(out / "face3d" / stem / f"{stem}_projections.npz")
    touch(out / "anonymized" / "a_jpg.jpg")
    touch(out / "anonymized" / "a_png.png")
    imgs = {i.stem: i for i in layout.discover(out, inp)}
    assert imgs["a_jpg"].original == inp / "a.jpg"
    assert imgs["a_png"].original == inp / "a.png"
    assert imgs["a_jpg"].anonymized == out / "anonymized" / "a_jpg.jpg"


def test_unknown_stem_falls_back_to_report_input(tmp_path):
    inp, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    inp.mkdir()
    real = touch(elsewhere / "b.jpg")
    touch(out / "face3d" / "b_2" / "b_2_projections.npz")
    report(out, [{"input": str(real), "stem": "b_2", "faces": 1, "status": "ok"}])
    (img,) = layout.discover(out, inp)
    assert img.original == real
    assert img.run_faces == 1 and img.run_status == "ok"


def test_originals_folder_wins_over_report(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    local = touch(inp / "c.png")
    touch(out / "face3d" / "c" / "c_projections.npz")
    report(out, [{"input": str(tmp_path / "gone" / "c.png"), "stem": "c", "faces": 1, "status": "ok"}])
    (img,) = layout.discover(out, inp)
    assert img.original == local
    (img,) = layout.discover(out, None)
    assert img.original is None and "gone" in img.original_note


def test_without_report_every_face3d_folder_is_an_image(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    touch(inp / "d.jpg")
    touch(inp / "sub" / "e.png")
    touch(out / "face3d" / "d" / "d_projections.npz")
    touch(out / "face3d" / "sub" / "e" / "e_projections.npz")
    touch(out / "face3d" / "empty" / "notes.txt")
    imgs = {i.stem: i for i in layout.discover(out, inp)}
    assert set(imgs) == {"d", "sub/e"}
    assert imgs["sub/e"].original == inp / "sub" / "e.png"
    assert imgs["d"].run_status == "unknown"


def test_nested_stem_files_named_with_the_full_stem(tmp_path):
    out = tmp_path / "out"
    touch(out / "face3d" / "2024" / "p1" / "a" / "2024" / "p1" / "a_projections.npz")
    touch(out / "render" / "2024" / "p1" / "a_front.png")
    touch(out / "anonymized" / "2024" / "p1" / "a.jpg")
    report(out, [{"input": str(tmp_path / "in" / "2024" / "p1" / "a.jpg"), "stem": "2024/p1/a", "faces": 1}])
    (img,) = layout.discover(out)
    assert [f.k for f in img.faces] == [0]
    assert img.faces[0].render == out / "render" / "2024" / "p1" / "a_front.png"
    assert img.anonymized == out / "anonymized" / "2024" / "p1" / "a.jpg"


def test_failed_images_are_reported_as_such(tmp_path):
    out = tmp_path / "out"
    report(out, [{"input": "/nowhere/f.jpg", "stem": "f", "faces": 0, "status": "failed", "error": "no face"}])
    (img,) = layout.discover(out)
    assert img.run_status == "failed" and img.run_error == "no face" and img.faces == []


def test_not_a_run_output(tmp_path):
    with pytest.raises(UsageError, match="not a folder"):
        layout.discover(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaceanonError, match="not a faceanon run output") as ei:
        layout.discover(tmp_path / "empty")
    assert ei.value.exit_code == 1
    touch(tmp_path / "bad" / "report.json", b"{not json")
    with pytest.raises(FaceanonError, match="cannot read"):
        layout.discover(tmp_path / "bad")


# -- pixel metrics -----------------------------------------------------------------------------------
def _scene(seed=0):
    rng = np.random.default_rng(seed)
    original = rng.integers(40, 216, size=(60, 80, 3), dtype=np.uint8)
    labels = np.zeros((60, 80), np.uint8)
    labels[10:20, 10:30] = 1  # 200 px
    labels[10:20, 50:70] = 2  # 200 px
    labels[40:50, 25:55] = 6  # 300 px
    labels[50:55, 25:55] = 7  # 150 px
    labels[25:38, 5:75] = 8   # 910 px
    return original, labels


def test_residual_is_the_share_of_unchanged_pixels():
    original, labels = _scene()
    composite = original.copy()
    # change the left half of every eye pixel row strongly, leave the right half
    eye = np.isin(labels, (1, 2))
    changed = eye & (np.arange(80)[None, :] % 20 < 10)
    composite[changed] = (0, 255, 0)
    composite[np.isin(labels, (6, 7))] = (128, 128, 128)
    eye_s, mouth_s, skin_s = face_region_stats(original, composite, labels)
    assert eye_s.pixels == 400 and mouth_s.pixels == 450 and skin_s.pixels == 910
    assert changed.sum() == 200
    assert eye_s.residual == pytest.approx(0.5)
    assert skin_s.residual == 1.0 and skin_s.de_mean == 0.0 and skin_s.de_median == 0.0
    # the mouth became one grey: its ΔE statistics are those of the pixel-wise formula
    de = ciede2000(srgb_to_lab(original[np.isin(labels, (6, 7))]), srgb_to_lab(np.array([128, 128, 128], np.uint8)))
    assert mouth_s.de_mean == pytest.approx(de.mean())
    assert mouth_s.residual == pytest.approx(np.mean(de < 2.0))


def test_residual_tolerance_is_a_delta_e_threshold():
    original, labels = _scene(1)
    composite = original.copy()
    composite[labels == 8] = np.clip(original[labels == 8].astype(int) + 1, 0, 255).astype(np.uint8)
    r = region_delta_e(original, composite, labels, {"skin": (8,)}, tolerance=2.0)["skin"]
    assert r.residual == 1.0 and 0 < r.de_mean < 2.0
    r = region_delta_e(original, composite, labels, {"skin": (8,)}, tolerance=0.01)["skin"]
    assert r.residual == 0.0


def test_missing_region_gives_nan_and_bad_shapes_are_named():
    original, labels = _scene()
    labels[labels == 1] = 0
    labels[labels == 2] = 0
    eye_s, _m, _s = face_region_stats(original, original, labels)
    assert eye_s.pixels == 0 and math.isnan(eye_s.residual)
    with pytest.raises(ValueError, match="composite"):
        face_region_stats(original, original[:-1], labels)
    with pytest.raises(ValueError, match="labels"):
        face_region_stats(original, original, labels[:, :-1])


def test_synthetic_labels_from_landmarks():
    # a crude frontal face: jaw arc, brows, nose, eyes, lips
    t = np.linspace(np.pi, 2 * np.pi, 17)
    jaw = np.column_stack([100 + 60 * np.cos(t), 100 - 70 * np.sin(t)])
    brows = np.column_stack([np.r_[np.linspace(55, 90, 5), np.linspace(110, 145, 5)], np.full(10, 70)])
    nose = np.column_stack([np.r_[np.full(4, 100), np.linspace(90, 110, 5)], np.r_[np.linspace(80, 110, 4), np.full(5, 115)]])
    eye = lambda cx: np.column_stack([cx + np.array([-12, -6, 6, 12, 6, -6]), 88 + np.array([0, -5, -5, 0, 5, 5])])  # noqa: E731
    outer = np.column_stack([100 + 25 * np.cos(np.linspace(np.pi, -np.pi, 13)[:12]), 140 + 10 * np.sin(np.linspace(np.pi, -np.pi, 13)[:12])])
    inner = np.column_stack([100 + 15 * np.cos(np.linspace(np.pi, -np.pi, 9)[:8]), 140 + 2 * np.sin(np.linspace(np.pi, -np.pi, 9)[:8])])
    lm = np.vstack([jaw, brows, nose, eye(75), eye(125), outer, inner])
    assert lm.shape == (68, 2)
    lab = labels_from_landmarks((200, 200), lm)
    assert set(np.unique(lab)) == set(range(9))
    assert lab[88, 75] == 1 and lab[88, 125] == 2  # image-left eye = label 1
    assert lab[0, 0] == 0 and lab[120, 70] == 8


# -- serialisation -----------------------------------------------------------------------------------
def _rows():
    nan = float("nan")
    return [
        FaceAudit(stem="a,b \"quoted\"", face=0, original="/x/a,b.jpg", backend="lite", score=0.9876543210123,
                  strong_composite_dist=0.1234567890123, strong_composite_reid=True, weak_composite_detected=False,
                  weak_composite_reid=False, reidentified=True, eye_pixels=12, eye_residual=0.25, skin_de_mean=nan,
                  face_index=0, face_count=2, render_note="no face detected in the render"),
        FaceAudit(stem="ünïcode/ß", face=1, status="error", error="line one\nline two; x", yaw=-12.5),
        FaceAudit(stem="m", face=-1, status="missed_face", weak_composite_dist=0.3, reidentified=True),
    ]


def test_json_and_csv_round_trip(tmp_path):
    res = AuditResult(run_out=str(tmp_path), threshold=0.6, residual_tolerance=2.0, rows=_rows())
    res.write()
    # no temp files left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.csv", "audit.json", "audit_attacks.csv"]
    assert rows_equal(read_audit_json(tmp_path / "audit.json"), res.rows)
    assert rows_equal(read_audit_csv(tmp_path / "audit.csv"), res.rows)
    # strict JSON: NaN is written as null
    data = json.loads((tmp_path / "audit.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert data["rows"][0]["skin_de_mean"] is None and data["threshold"] == 0.6
    assert data["summary"]["reidentified"] == 2


def test_rows_equal_sees_a_difference():
    a, b = _rows(), _rows()
    b[0].strong_composite_dist += 1e-12
    assert not rows_equal(a, b)
    b = _rows()
    b[1].weak_composite_detected = False
    assert not rows_equal(a, b)


def test_exit_codes_of_a_result():
    ok = FaceAudit(stem="a", face=0, reidentified=False, reid_beyond_eraser=False)
    reid = FaceAudit(stem="b", face=0, reidentified=True, reid_beyond_eraser=True, reid_beyond_eraser_by="dlib")
    # re-identified on the composite, but the eraser image is too: not the anonymizer's fault
    excused = FaceAudit(stem="d", face=0, reidentified=True, eraser_reid=True, reid_beyond_eraser=False)
    err = FaceAudit(stem="c", face=0, status="error", error="x")
    r = lambda *rows: AuditResult(run_out=".", threshold=0.6, residual_tolerance=2.0, rows=list(rows))  # noqa: E731
    assert r(ok).exit_code(True) == 0
    assert r(ok, reid).exit_code(False) == 0
    assert r(ok, reid).exit_code(True) == 3
    assert r(ok, err).exit_code(True) == 1
    assert r(reid, err).exit_code(True) == 3
    assert r(ok, excused).exit_code(True) == 0
    assert r(ok, excused).exit_code(True, raw=True) == 3


def test_write_to_unwritable_place_is_an_output_error(tmp_path):
    from faceanon.errors import OutputError

    blocker = touch(tmp_path / "file")
    res = AuditResult(run_out=str(tmp_path), threshold=0.6, residual_tolerance=2.0, rows=_rows())
    with pytest.raises(OutputError, match="cannot write"):
        res.write(json_path=blocker / "audit.json")
