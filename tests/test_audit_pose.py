"""Pose buckets and ground-truth yaw (AFLW2000-3D / 300W-LP ``.mat``) in the audit (no dlib needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceanon.audit import pose as P
from faceanon.audit import run_audit
from faceanon.audit import synthetic as S
from tests.support.fake_audit import RegionMean, one_face_run, save_png, textured, fake_face

LM = S.crude_landmarks68(160, 120, 0.8)


@pytest.mark.parametrize("yaw,bucket", [(0, "<30"), (29, "<30"), (29.99, "<30"), (30, "30-60"), (-30, "30-60"),
                                        (45, "30-60"), (60, "30-60"), (60.01, ">60"), (61, ">60"), (-61, ">60"),
                                        (90, ">60"), (float("nan"), ""), (None, "")])
def test_bucket_boundaries(yaw, bucket):
    assert P.pose_bucket(yaw) == bucket


def test_read_ground_truth_in_degrees_with_landmarks(tmp_path):
    p = S.write_ground_truth_mat(tmp_path / "a.mat", yaw_deg=-47.5, pitch_deg=12.0, roll_deg=3.0, landmarks68=LM)
    gt = P.read_ground_truth(p)
    assert gt.yaw == pytest.approx(-47.5) and gt.pitch == pytest.approx(12.0) and gt.roll == pytest.approx(3.0)
    assert np.allclose(gt.landmarks68, LM)
    q = S.write_ground_truth_mat(tmp_path / "b.mat", yaw_deg=20.0, landmarks68=LM, key="pt2d")  # 300W-LP layout
    assert np.allclose(P.read_ground_truth(q).landmarks68, LM)


def test_read_ground_truth_rejects_what_it_cannot_use(tmp_path):
    from scipy.io import savemat

    savemat(str(tmp_path / "nopose.mat"), {"pt2d": np.zeros((2, 21))})
    with pytest.raises(ValueError, match="Pose_Para"):
        P.read_ground_truth(tmp_path / "nopose.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(ValueError, match="readable"):
        P.read_ground_truth(tmp_path / "junk.mat")
    savemat(str(tmp_path / "aflw21.mat"), {"Pose_Para": np.zeros((1, 7)), "pt2d": np.zeros((2, 21))})
    assert P.read_ground_truth(tmp_path / "aflw21.mat").landmarks68 is None  # 21 AFLW points: not 68


def test_ground_truth_goes_to_the_face_it_describes(tmp_path):
    other = S.crude_landmarks68(60, 60, 0.4)
    gt = P.GroundTruthPose(tmp_path / "x.mat", 50.0, 0.0, 0.0, LM + 2.0)
    assert P.assign_ground_truth(gt, [other, LM]) == 1
    assert P.assign_ground_truth(gt, [other, None]) is None  # no overlap
    no_lm = P.GroundTruthPose(tmp_path / "x.mat", 50.0, 0.0, 0.0, None)
    assert P.assign_ground_truth(no_lm, [LM]) == 0
    assert P.assign_ground_truth(no_lm, [LM, other]) is None  # which one? none


def test_choose_yaw_prefers_ground_truth():
    assert P.choose_yaw(10.0, 45.0) == (45.0, "gt")
    assert P.choose_yaw(10.0, None) == (10.0, "fit")
    assert P.choose_yaw(10.0, float("nan")) == (10.0, "fit")
    yaw, src = P.choose_yaw(float("nan"), None)
    assert math.isnan(yaw) and src == ""


def test_ground_truth_file_is_the_sibling_mat(tmp_path):
    img = save_png(tmp_path / "p.png", textured(20, 20))
    assert P.ground_truth_file(img) is None
    S.write_ground_truth_mat(tmp_path / "p.mat", 5.0)
    assert P.ground_truth_file(img) == tmp_path / "p.mat"
    assert P.ground_truth_file(None) is None


def test_the_audit_uses_ground_truth_yaw_and_buckets_faces(tmp_path):
    out, inp = tmp_path / "out", tmp_path / "in"
    orig = textured()
    entries = [
        one_face_run(out, inp, "gt", orig, None, LM, pose=(10.0, 0.0, 0.0)),  # fitted 10°, ground truth 45°
        one_face_run(out, inp, "fit", orig, None, LM, pose=(-70.0, 5.0, 0.0)),  # no .mat: fitted -70°
        one_face_run(out, inp, "bad", orig, None, LM, pose=(20.0, 0.0, 0.0)),  # unreadable .mat: fitted 20°
    ]
    S.write_report(out, entries)
    S.write_ground_truth_mat(inp / "gt.mat", yaw_deg=45.0, landmarks68=LM)
    (inp / "bad.mat").write_bytes(b"\x00garbage" * 50)
    face = RegionMean("face", "face")
    res = run_audit(out, None, 0.6, models=face, write=False)
    gt, fit, bad = res.rows
    assert (gt.yaw, gt.gt_yaw, gt.pose_yaw, gt.pose_source, gt.pose_bucket) == (10.0, pytest.approx(45.0),
                                                                                 pytest.approx(45.0), "gt", "30-60")
    assert (fit.pose_yaw, fit.pose_source, fit.pose_bucket) == (-70.0, "fit", ">60") and math.isnan(fit.gt_yaw)
    assert (bad.pose_yaw, bad.pose_source, bad.pose_bucket) == (20.0, "fit", "<30")
    assert "bad.mat not used" in bad.pose_note and gt.pose_note == ""
    by = res.by_pose()
    assert list(by) == ["<30", "30-60", ">60", "all"]
    assert [by[b]["faces"] for b in ("<30", "30-60", ">60", "all")] == [1, 1, 1, 3]
    assert by["30-60"]["gt_pose"] == 1 and by["all"]["gt_pose"] == 1
    assert by[">60"]["face_reid"] == 1 and by[">60"]["face_reid_beyond_eraser"] == 1


def test_a_ground_truth_matching_no_face_is_noted(tmp_path):
    out, inp = tmp_path / "out", tmp_path / "in"
    orig = textured()
    S.write_report(out, [one_face_run(out, inp, "p", orig, None, LM, pose=(15.0, 0.0, 0.0))])
    S.write_ground_truth_mat(inp / "p.mat", yaw_deg=80.0, landmarks68=S.crude_landmarks68(40, 40, 0.2))
    (row,) = run_audit(out, None, 0.6, models=RegionMean("face", "face"), write=False).rows
    assert row.pose_source == "fit" and row.pose_bucket == "<30"
    assert "matches no reconstructed face" in row.pose_note


def test_two_faces_one_ground_truth(tmp_path):
    out, inp = tmp_path / "out", tmp_path / "in"
    orig = textured(240, 480)
    left, right = S.crude_landmarks68(110, 120, 0.8), S.crude_landmarks68(350, 120, 0.8)
    src = save_png(inp / "two.png", orig)
    faces = [fake_face(orig.shape[:2], left, (5.0, 0, 0)), fake_face(orig.shape[:2], right, (8.0, 0, 0))]
    S.write_report(out, [S.write_fake_image(out, "two", src, orig, faces)])
    S.write_ground_truth_mat(inp / "two.mat", yaw_deg=-33.0, landmarks68=right)
    rows = run_audit(out, None, 0.6, models=RegionMean("face", "face"), write=False).rows
    assert [(r.face, r.pose_source, r.pose_bucket) for r in rows] == [(0, "fit", "<30"), (1, "gt", "30-60")]
    assert rows[1].pose_yaw == pytest.approx(-33.0)
