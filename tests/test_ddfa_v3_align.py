"""Alignment, crop geometry, the three row conventions and the paste-back (docs/ddfa_v3.md, sections 4, 8, 11 and 12)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ddfa_v3 import align

STEMS = ("edo", "sis")


@pytest.fixture(scope="module")
def summary(spec_data_dir):
    p = spec_data_dir / "fixtures_summary.json"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return json.loads(p.read_text())


def _npz(reference_dir, stem):
    with np.load(reference_dir / f"{stem}_projections.npz") as z:
        return {k: z[k] for k in z.files}


# --- golden fixtures (docs/ddfa_v3.md, section 12): the label maps are reproduced bit-exactly -----------------------------------------------
@pytest.mark.parametrize("stem", STEMS)
def test_seg_visible_labels_full_bit_exact(stem, reference_dir, spec_data_dir):
    ref = _npz(reference_dir, stem)
    crop = np.load(spec_data_dir / f"{stem}_seg_visible_labels_crop224_reconstructed.npy")
    tp = ref["trans_params"]
    assert tp.dtype == np.float32
    full = align.back_resize_labels(crop, tp)
    assert full.dtype == np.uint8 and full.shape == ref["seg_visible_labels_full"].shape
    assert np.array_equal(full, ref["seg_visible_labels_full"])


def test_per_part_paste_equals_merged_paste(reference_dir, spec_data_dir):
    """The seed pastes each part separately (later parts win); pasting the merged map is identical."""
    ref = _npz(reference_dir, "sis")
    crop = np.load(spec_data_dir / "sis_seg_visible_labels_crop224_reconstructed.npy")
    out = np.zeros(ref["seg_visible_labels_full"].shape, np.uint8)
    for i in range(8):
        m = align.back_resize_crop_img((crop == i + 1).astype(np.uint8), ref["trans_params"])
        out[m > 0] = i + 1
    assert np.array_equal(out, ref["seg_visible_labels_full"])


# --- golden fixtures: derived crop geometry -----------------------------------------------------------------------------
@pytest.mark.parametrize("stem,expected", [("edo", (248, 331, 0, 70)), ("sis", (220, 330, -7, 70))])
def test_crop_geometry_from_stored_trans_params(stem, expected, reference_dir, summary):
    tp = _npz(reference_dir, stem)["trans_params"]
    g = align.crop_geometry(tp)
    assert tuple(g) == expected
    assert [g.w, g.h] == summary[stem]["resized_wh"] and [g.left, g.up] == summary[stem]["crop_left_up"]
    assert tuple(align.crop_geometry(tp.astype(np.float64))) == expected


def test_int32_truncates_toward_zero():
    # left = int32(w/2 - 112 + (tx - W0/2) s) with a negative fractional value -7.8 -> -7
    w0, s = 100.0, 2.0
    tx = (-7.8 - (int(w0 * s) / 2 - 112)) / s + w0 / 2
    g = align.crop_geometry(np.array([w0, 100.0, s, tx, 50.0]))
    assert g.left == -7


# --- POS round trip ---------------------------------------------------------------------------------------
def _rot(yaw, pitch, roll):
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.mark.parametrize("s_true,t_true,angles", [
    (400.0, (512.3, 700.8), (0, 0, 0)),
    (155.5, (-20.0, 1300.25), (0.0, 0.0, 0.3)),
    (980.0, (600.0, 800.0), (0.25, -0.1, 0.05)),
])
def test_pos_recovers_scale_and_translation(s_true, t_true, angles):
    x3 = align.TEMPLATE_5.astype(np.float64)
    r = _rot(*angles)
    xp = s_true * (x3 @ r.T)[:, :2] + np.array(t_true)
    t, s_pos = align.pos(xp, x3)
    np.testing.assert_allclose(t, t_true, rtol=0, atol=1e-6 * s_true)
    np.testing.assert_allclose(s_pos, s_true, rtol=1e-9)


def test_align_crop_reproduces_stored_trans_params_and_pil_crop():
    """5 points made from known (s, t) give trans_params [W0, H0, 102/s_pos, tx, ty] and the PIL crop."""
    h0, w0 = 300, 200
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h0, w0, 3), dtype=np.uint8)
    s_pos, t = 150.0, np.array([95.5, 160.25])  # y-up
    lm5 = (s_pos * align.TEMPLATE_5[:, :2].astype(np.float64) + t).astype(np.float32)
    crop, tp = align.align_crop(rgb, lm5)
    assert tp.dtype == np.float64 and crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(tp[:2], [w0, h0])
    np.testing.assert_allclose(tp[2], 102.0 / s_pos, rtol=1e-5)
    np.testing.assert_allclose(tp[3:], t, atol=1e-3)
    g = align.crop_geometry(tp)
    ref = Image.fromarray(rgb).resize((g.w, g.h), Image.BICUBIC).crop((g.left, g.up, g.left + 224, g.up + 224))
    assert np.array_equal(crop, np.asarray(ref))
    # the nose tip lands where the template puts it: 102 * (x, -y) + 112 in crop px (y down)
    nose_crop = np.array([102 * align.TEMPLATE_5[2, 0] + 112, 112 - 102 * align.TEMPLATE_5[2, 1]])
    nose_photo_ydown = np.array([lm5[2, 0], h0 - 1 - lm5[2, 1]])
    back = align.back_resize_ldms(nose_crop[None], tp)[0]
    assert np.abs(back - nose_photo_ydown).max() < 1.0 / tp[2] + 1.0  # within one crop pixel


def test_align_crop_refuses_degenerate_points():
    rgb = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match="degenerate"):
        align.align_crop(rgb, np.full((5, 2), 10.0, np.float32))


def test_template_from_real_mat(shared_dir):
    p = shared_dir / "assets" / "deep3d" / "similarity_Lm3D_all.mat"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    np.testing.assert_allclose(align.load_template(p), align.TEMPLATE_5, atol=1e-7)


# --- the three row conventions, one test each ------------------------------------------------------------
def test_conversion_223_minus_y_landmark_rows(reference_dir, spec_data_dir):
    """v2d (y-up) -> (x, 223 - y) -> back_resize_ldms reproduces the stored v2d_full."""
    v = np.array([[10.0, 0.0], [112.0, 223.0], [50.5, 100.25]], np.float32)
    np.testing.assert_array_equal(align.v2d_to_crop_px(v), [[10, 223], [112, 0], [50.5, 122.75]])
    for stem in STEMS:
        ref = _npz(reference_dir, stem)
        v2d = np.load(spec_data_dir / f"{stem}_v2d_crop224_model_convention.npy")
        full = align.back_resize_ldms(align.v2d_to_crop_px(v2d), ref["trans_params"])
        assert full.dtype == np.float32
        assert np.abs(full - ref["v2d_full"]).max() < 1e-3


def test_conversion_224_minus_y_cpu_raster_rows(reference_dir, spec_data_dir):
    """Golden fixtures: the crop label bbox equals the integer pixels covered in the (x, 224 - y) raster frame."""
    v = np.array([[3.0, 0.0], [7.5, 224.0]], np.float32)
    np.testing.assert_array_equal(align.v2d_to_cpu_raster_px(v), [[3, 224], [7.5, 0]])
    for stem in STEMS:
        v2d = np.load(spec_data_dir / f"{stem}_v2d_crop224_model_convention.npy")
        labels = np.load(spec_data_dir / f"{stem}_seg_visible_labels_crop224_reconstructed.npy")
        rows, cols = np.nonzero(labels)
        p = align.v2d_to_cpu_raster_px(v2d).astype(np.float64)
        assert rows.min() == int(np.ceil(p[:, 1].min())) and rows.max() == int(np.floor(p[:, 1].max()))
        assert cols.min() == int(np.ceil(p[:, 0].min())) and cols.max() == int(np.floor(p[:, 0].max()))
        # and the landmark convention is exactly one row higher (seed bug S-9)
        q = align.v2d_to_crop_px(v2d).astype(np.float64)
        np.testing.assert_allclose(p[:, 1] - q[:, 1], 1.0, atol=1e-4)


def test_conversion_y_flip_of_five_points():
    ldm = np.zeros((106, 2), np.float32)
    ids = list(align.LM5_FROM_106)
    ldm[ids] = [[30, 40], [70, 41], [50, 60], [35, 80], [65, 81]]
    p5 = align.five_points_from_106(ldm, height=100)
    np.testing.assert_array_equal(p5, [[30, 59], [70, 58], [50, 39], [35, 19], [65, 18]])
    np.testing.assert_array_equal(align.flip_y(p5, 100), ldm[ids])  # self-inverse


def test_labels_from_parts_later_parts_win():
    masks = np.zeros((8, 2, 3), bool)
    masks[0, 0, :] = True  # right eye
    masks[4, 0, 1:] = True  # nose over the eye
    masks[7, 0, 2] = True  # skin over both
    masks[5, 1, 0] = True
    lab = align.labels_from_parts(masks)
    np.testing.assert_array_equal(lab, [[1, 5, 8], [6, 0, 0]])


def test_back_resize_crop_img_negative_left_clips():
    tp = np.array([740.0, 1109.0, 0.2976241111755371, 350.4087829589844, 496.1190490722656], np.float32)
    crop = np.zeros((224, 224), np.uint8)
    crop[:, :7] = 9  # the 7 crop columns left of the photo (left = -7) are lost
    crop[:, 7] = 3
    out = align.back_resize_crop_img(crop, tp)
    assert out.shape == (1109, 740) and 9 not in out and 3 in out[:, :5]
