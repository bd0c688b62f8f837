"""The audit reads and writes through the project's io helpers (faceanon.io.records / faceanon.io.atomic)."""

from __future__ import annotations

import numpy as np
import pytest

from faceanon.audit.core import atomic_write_text, read_face_npz
from faceanon.audit.synthetic import FakeFace, save_projections_npz
from faceanon.errors import FaceanonError, OutputError


def _face():
    lm = np.stack([np.linspace(10, 60, 68), np.linspace(20, 80, 68)], axis=1)
    labels = np.zeros((100, 90), np.uint8)
    labels[30:40, 20:30] = 1
    return FakeFace(landmarks68=lm, box=np.array([5, 15, 70, 90], np.float32), labels=labels, pose=(12, -3, 1))


def test_read_face_npz_takes_what_it_finds(tmp_path):
    p = tmp_path / "a_projections.npz"
    save_projections_npz(p, _face(), (90, 100), 0, 2)
    rec = read_face_npz(p)
    assert rec["labels"].shape == (100, 90) and rec["labels"].sum() == 100
    assert rec["landmarks68"].shape == (68, 2) and rec["pose"].tolist() == [12, -3, 1]
    assert (rec["backend"], rec["face_index"], rec["face_count"]) == ("synthetic", 0, 2)
    # the seed's npz (four keys only): the audit still reads it, the extras are None
    seed = tmp_path / "seed_projections.npz"
    np.savez(seed, trans_params=np.zeros(5, np.float32), img_size=np.array([90, 100], np.int32),
             seg_visible_labels_full=np.zeros((100, 90), np.uint8), v2d_full=np.zeros((4, 2), np.float32))
    rec = read_face_npz(seed)
    assert rec["landmarks68"] is None and rec["pose"] is None and rec["backend"] == ""


def test_broken_or_pickled_npz_is_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "b_projections.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(FaceanonError, match="b_projections.npz: not a readable .npz"):
        read_face_npz(bad)
    pickled = tmp_path / "c_projections.npz"
    np.savez(pickled, landmarks68=np.array([object()], dtype=object))
    with pytest.raises(FaceanonError, match="cannot be read without pickle"):
        read_face_npz(pickled)


def test_atomic_write_text_leaves_no_temporary_and_reports_os_errors(tmp_path):
    target = tmp_path / "sub" / "audit.csv"
    atomic_write_text(target, "a,b\r\n1,2\r\n")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["audit.csv"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"^cannot write .*file/audit\.json: "):
        atomic_write_text(tmp_path / "file" / "audit.json", "{}")
