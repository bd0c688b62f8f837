"""Eraser baseline, several attackers, detection kept and the pose table, with a recognizer test double.

:class:`tests.support.fake_audit.RegionMean` implements the audit's recognizer interface with a known
answer: a "face" attacker looks at the middle of the face (the eraser hides it), a "context" attacker at
a ring around it (hair/background: the eraser leaves it). No dlib needed.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from rich.console import Console

from faceanon.audit import read_audit_csv, read_audit_json, rows_equal, run_audit
from faceanon.audit import synthetic as S
from faceanon.audit.core import (AuditResult, FaceAudit, beyond_eraser, load_audit, read_attacks_csv,
                                 read_attacks_json)
from tests.support.fake_audit import RegionMean, one_face_run, paint_face, textured

LM = S.crude_landmarks68(160, 120, 0.8)  # landmark box x 112..208, y 96..176


@pytest.fixture
def attackers():
    face = RegionMean("face", "face", known_faces=[LM])
    context = RegionMean("context", "context")
    return face, context


@pytest.fixture
def two_image_run(tmp_path):
    """'same': the anonymized photo is the original; 'painted': its face box is painted flat green."""
    out, inp = tmp_path / "out", tmp_path / "in"
    orig = textured()
    entries = [one_face_run(out, inp, "same", orig, None, LM),
               one_face_run(out, inp, "painted", orig, paint_face(orig, LM), LM)]
    S.write_report(out, entries)
    return out


def test_beyond_eraser_truth_table():
    assert beyond_eraser(True, None, False) is True
    assert beyond_eraser(True, None, True) is False  # the eraser gets it too: not the anonymizer's fault
    assert beyond_eraser(True, None, None) is True  # no eraser figure excuses nothing
    assert beyond_eraser(False, True, True) is True  # the render shows no context
    assert beyond_eraser(False, False, True) is False
    assert beyond_eraser(None, None, True) is None


def test_face_attacker_beyond_eraser_context_attacker_excused(two_image_run, attackers):
    face, context = attackers
    res = run_audit(two_image_run, None, 0.6, models=face, attackers=[context], write=False)
    assert res.attackers == ["face", "context"]
    same, painted = res.rows
    assert (same.stem, painted.stem) == ("same", "painted")
    # unchanged photo: the face attacker matches it, and not the eraser image -> beyond the eraser
    assert same.strong_composite_dist == 0.0 and same.strong_composite_reid is True
    assert same.eraser_dist > 50 and same.eraser_reid is False
    assert same.reidentified is True and same.reid_beyond_eraser is True
    assert same.reid_beyond_eraser_by == "face"  # the context attacker matches the eraser image too
    # painted face: the face attacker fails, the context attacker still matches, but so does its eraser
    assert painted.strong_composite_reid is False and painted.reidentified is False
    assert painted.reid_beyond_eraser is False and painted.reid_beyond_eraser_by == ""
    by = {(a.stem, a.attacker): a for a in res.attacks}
    assert len(res.attacks) == 4
    ctx = by[("painted", "context")]
    assert ctx.composite_reid is True and ctx.eraser_reid is True and ctx.reid_beyond_eraser is False
    assert ctx.threshold == 4.0 and ctx.reidentified is True
    assert by[("same", "face")].threshold == 0.6  # the primary takes the audit's --threshold
    assert by[("same", "face")].render_reid is None and "render missing" in same.render_note
    # exit codes: beyond the eraser (default) vs raw
    assert res.exit_code(fail_on_reid=True) == 3
    only_painted = AuditResult(run_out=".", threshold=0.6, residual_tolerance=2.0, rows=[painted],
                               attacks=[a for a in res.attacks if a.stem == "painted"], attackers=res.attackers)
    assert only_painted.exit_code(fail_on_reid=True) == 0
    assert only_painted.exit_code(fail_on_reid=True, raw=True) == 3  # the context attacker's raw match


def test_detection_kept_and_summary(two_image_run, attackers):
    face, context = attackers
    res = run_audit(two_image_run, None, 0.6, models=face, attackers=[context], write=False)
    same, painted = res.rows
    assert same.weak_original_detected and same.weak_composite_detected
    assert painted.weak_original_detected and painted.weak_composite_detected is False  # painted flat: lost
    s = res.summary()
    assert s["detected_original"] == 2 and s["detection_kept"] == 0.5
    assert s["reid_beyond_eraser"] == 1 and s["eraser_reidentified"] == 0 and s["reidentified"] == 1
    assert s["far_changed_max"] == 0.0  # the paint stays inside the face box
    assert same.far_pixels == painted.far_pixels > 0
    assert s["attackers"] == ["face", "context"]


def test_pixel_figures_of_the_fake_run(two_image_run, attackers):
    face, _ = attackers
    same, painted = run_audit(two_image_run, None, 0.6, models=face, write=False).rows
    assert same.eye_residual == 1.0 and same.eye_residual_moved == 1.0 and same.skin_mean_colour_de == 0.0
    assert painted.eye_residual == 0.0 and painted.skin_mean_colour_de > 30
    assert painted.eye_residual_moved < 0.05  # flat green matches no eye pixel at any shift
    x1, y1, x2, y2 = LM.min(0)[0], LM.min(0)[1], LM.max(0)[0], LM.max(0)[1]
    assert same.face_size == pytest.approx(math.sqrt((x2 - x1) * (y2 - y1)))


def test_attacks_and_pose_survive_json_and_csv(two_image_run, attackers, tmp_path):
    face, context = attackers
    res = run_audit(two_image_run, None, 0.6, models=face, attackers=[context])
    assert res.attacks_csv_path == str(two_image_run / "audit_attacks.csv")
    assert rows_equal(read_attacks_json(two_image_run / "audit.json"), res.attacks)
    assert rows_equal(read_attacks_csv(two_image_run / "audit_attacks.csv"), res.attacks)
    assert rows_equal(read_audit_csv(two_image_run / "audit.csv"), res.rows)
    back = load_audit(two_image_run / "audit.json")
    assert back.attackers == ["face", "context"] and rows_equal(back.rows, res.rows)
    assert back.by_pose() == res.by_pose()
    data = json.loads((two_image_run / "audit.json").read_text())
    assert data["version"] == 2 and data["summary"]["by_pose"]["all"]["context_eraser_reid"] == 2
    # --csv elsewhere: the attacks table goes beside it
    res.write(csv_path=tmp_path / "x" / "mine.csv")
    assert (tmp_path / "x" / "mine_attacks.csv").is_file()
    assert rows_equal(read_audit_json(two_image_run / "audit.json"), res.rows)


def test_two_attackers_with_one_name_are_refused(two_image_run, attackers):
    from faceanon.errors import UsageError

    face, _ = attackers
    with pytest.raises(UsageError, match="share a name"):
        run_audit(two_image_run, None, 0.6, models=face, attackers=[RegionMean("x", "face"), RegionMean("x", "context")],
                  write=False)


def test_printed_tables(two_image_run, attackers):
    from faceanon.cli.audit_cmd import print_result

    face, context = attackers
    res = run_audit(two_image_run, None, 0.6, models=face, attackers=[context], write=False)
    con = Console(record=True, width=260, highlight=False)
    print_result(res, con)
    text = con.export_text()
    assert "by pose" in text and "below 30°" in text and "context" in text
    assert "YES" in text  # the same photo, beyond the eraser
    assert "re-identified beyond the eraser baseline 1" in text and "detection kept 50.0%" in text


def test_result_rows_without_the_new_fields_still_summarise():
    # an audit.json of version 1 (no attacks, no pose) reads and summarises: unknown pose bucket
    r = AuditResult(run_out=".", threshold=0.6, residual_tolerance=2.0,
                    rows=[FaceAudit(stem="a", face=0, reidentified=True, eye_residual=0.5)])
    by = r.by_pose()
    assert list(by) == ["", "all"] and by[""]["faces"] == 1 and by["all"]["eye_residual"] == 0.5
    assert np.isnan(r.summary()["detection_kept"])
