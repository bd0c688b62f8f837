"""The anonymized OBJ in the canonical frame is in millimetres, centred on the mean face, for both
models (faceanon/models/units.py), and the stages that read it back are unit-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_anonymize_helpers import bfm, draw_photo, posed_face  # noqa: F401 - bfm is a fixture

from faceanon.models.units import mm_per_unit, to_mm_frame
from faceanon.stages.anonymize import anonymize_face
from faceanon.io.facefiles import anonymized_obj_vertices
from faceanon.stages.composite import posed_image_vertices
from faceanon.stages.render import render_front


def _eye_centre_distance(v: np.ndarray, kp68: np.ndarray) -> float:
    L = v[kp68]
    return float(np.linalg.norm(L[[36, 39]].mean(0) - L[[42, 45]].mean(0)))


@pytest.fixture(scope="module")
def lite_anon(bfm):
    mean, tri, uv = bfm.mean_vertices, bfm.triangles, bfm.uv
    obj, img_v, _ = posed_face(mean, yaw=20, pitch=-5, roll=3)
    H, W = 440, 400
    rng = np.random.default_rng(1)
    photo = draw_photo(img_v, tri, np.clip(rng.normal([190, 140, 115], 12, size=(len(mean), 3)), 1, 255), H, W)
    a = anonymize_face(img_v, tri, uv, photo, mean, alpha=1.0, tex_size=256)
    return a, obj, H


def test_lite_canonical_obj_is_the_mean_face_in_millimetres(bfm, lite_anon):
    a, _, _ = lite_anon
    v = anonymized_obj_vertices(a, keep_pose=False).astype(np.float64)
    assert mm_per_unit(bfm.mean_vertices) == 1e-3
    np.testing.assert_allclose(v, (bfm.mean_vertices - (bfm.mean_vertices.min(0) + bfm.mean_vertices.max(0)) / 2) * 1e-3,
                               atol=1e-4)
    np.testing.assert_allclose((v.min(0) + v.max(0)) / 2, 0.0, atol=1e-4)  # centred on its bounding box
    width, height, depth = np.ptp(v, axis=0)
    assert 140 < width < 170 and 160 < height < 200 and 100 < depth < 140  # a human head's front, in mm
    # adult interpupillary distance is about 62-64 mm
    assert 58 < _eye_centre_distance(v, bfm.kp68) < 68


def test_the_3ddfa_v3_unit_is_100_mm_through_its_alignment_template(bfm, mirror_dir: Path):
    """similarity_Lm3D_all.mat, the template 3DDFA-V3 aligns its 224 crop to (at 102 px per unit, the
    camera's 1015 px / distance 10 per model unit), is the BFM's 68 landmarks in units of 100 mm."""
    from scipy.io import loadmat

    p = mirror_dir / "deep3d" / "similarity_Lm3D_all.mat"
    if not p.is_file():
        pytest.skip(f"{p} not in the mirror")
    lm = loadmat(str(p))["lm"].astype(np.float64)  # (68, 3)
    L = bfm.mean_vertices[bfm.kp68].astype(np.float64)
    d_tpl = np.linalg.norm(lm[:, None] - lm[None], axis=2)[np.triu_indices(68, 1)]
    d_bfm = np.linalg.norm(L[:, None] - L[None], axis=2)[np.triu_indices(68, 1)]
    ratio = np.median((d_bfm * 1e-3) / (d_tpl * 100.0))
    assert abs(ratio - 1.0) < 0.01
    assert mm_per_unit(np.zeros((35709, 3))) == 100.0


def test_unknown_models_keep_their_own_units():
    v = np.random.default_rng(0).normal(size=(144, 3))
    np.testing.assert_array_equal(to_mm_frame(v, v), v)
    assert mm_per_unit(v) is None


def test_composite_recovers_the_pose_from_the_millimetre_obj(lite_anon):
    a, obj, H = lite_anon
    posed = posed_image_vertices(anonymized_obj_vertices(a, keep_pose=False), obj, H)
    np.testing.assert_allclose(posed, a.posed_image_vertices, atol=0.02)  # px


def test_render_frames_the_millimetre_obj_like_the_model_units(bfm, lite_anon):
    a, _, _ = lite_anon
    mm = render_front(anonymized_obj_vertices(a, keep_pose=False), bfm.triangles, bfm.uv, a.texture, img_size=256)
    raw = render_front(bfm.mean_vertices, bfm.triangles, bfm.uv, a.texture, img_size=256)
    assert np.abs(mm.astype(int) - raw.astype(int)).max() <= 1
    alpha = mm[..., 3] > 0
    assert 0.3 < alpha.mean() < 0.8  # the face fills the frame
