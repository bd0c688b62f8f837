"""The seed's extractTex and UV renderer mapping (docs/ddfa_v3.md, section 10): ddfa_v3.texture."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np
import pytest

from ddfa_v3 import align
from ddfa_v3.testing import synthetic_face_model
from ddfa_v3.texture import (SEED_UV_EPS, bilinear_sample_seed, extract_texture_seed, uint8_seed, uv_render,
                             uv_screen_vertices, vertex_colors_from_uv)
from faceanon.raster import rasterize
from tests.support.synthetic_v3 import fit, model  # noqa: F401 (fixtures)

S = 256  # UV size for the fit-based tests (the seed's 2048 only costs time)


# --- fixtures: one synthetic model and one fit per module (tests/support/synthetic_v3.py) ------------------
@pytest.fixture(scope="module")
def inset_model():
    """The synthetic face model dict with its UV layout shrunk into [0.1, 0.9]^2.

    The synthetic layout touches u = 1 and v = 1, i.e. the image border that seamlessClone pins to
    the destination (PCA) image; the real BFM layout does not. Shrinking it gives clean cases.
    """
    fm = synthetic_face_model()
    fm["uv_coords"] = (0.1 + 0.8 * fm["uv_coords"]).astype(np.float32)
    return fm


def _with(fit: dict, **changes) -> dict:
    out = dict(fit)
    out.update(changes)
    return out


def _expected_src_pca(fit: dict, fm: dict, size: int):
    """The two seamlessClone inputs, computed from the pieces (uint8-truncated, back in [0, 1])."""
    pts = align.v2d_to_crop_px(fit["v2d_crop"].astype(np.float64))
    img_colors = bilinear_sample_seed(fit["crop"] / 255.0, pts[:, 0], pts[:, 1])
    src = uint8_seed(uv_render(fm["uv_coords"], fm["tri"], img_colors, size) * 255) / 255.0
    pca = uint8_seed(uv_render(fm["uv_coords"], fm["tri"], np.clip(fit["face_texture"], 0, 1), size) * 255) / 255.0
    islands = uv_render(fm["uv_coords"], fm["tri"], np.ones(len(fm["uv_coords"])), size) > 0.5
    return src, pca, islands


def _erode(mask: np.ndarray, px: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(px):
        out[1:-1, 1:-1] = (out[1:-1, 1:-1] & out[:-2, 1:-1] & out[2:, 1:-1] & out[1:-1, :-2] & out[1:-1, 2:])
        out[[0, -1], :] = False
        out[:, [0, -1]] = False
    return out


# --- UV screen mapping and renderer ------------------------------------------------------------------------
def test_uv_screen_mapping_seed_formula():
    for size in (64, 2048):
        v = uv_screen_vertices(np.array([[0.25, 0.75], [0.0, 1.0], [1.0, 0.0]]), size)
        eps_px = SEED_UV_EPS * size
        np.testing.assert_allclose(v[0, :2], [0.25 * size, 0.25 * size], atol=eps_px)
        assert v[0, 0] == pytest.approx(0.25 * size + eps_px / 2, abs=1e-9)
        assert v[0, 1] == pytest.approx(0.25 * size - eps_px / 2, abs=1e-9)
        np.testing.assert_allclose(v[1, :2], [0.0, 0.0], atol=eps_px)  # v = 1 is row 0 (OBJ convention)
        np.testing.assert_allclose(v[2, :2], [size, size], atol=eps_px)
        assert np.all(v[:, 2] == v[0, 2])  # constant depth


def test_uv_render_places_and_interpolates():
    # a square island [0.21, 0.46] x [0.61, 0.91] in UV, attributes linear in (u, v)
    uv = np.array([[0.21, 0.61], [0.46, 0.61], [0.46, 0.91], [0.21, 0.91]])
    tri = np.array([[0, 1, 2], [0, 2, 3]])
    attrs = np.stack([uv[:, 0], uv[:, 1], np.ones(4)], 1)
    size = 40
    img = uv_render(uv, tri, attrs, size)
    assert img.shape == (size, size, 3) and img.dtype == np.float64
    rows, cols = np.nonzero(img[..., 2] > 0)
    # covered pixel centres: col in [0.21 S, 0.46 S] = [8.4, 18.4], row = (1 - v) S in [3.6, 15.6]
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (9, 18, 4, 15)
    rr, cc = np.mgrid[0:size, 0:size]
    inside = img[..., 2] > 0
    np.testing.assert_allclose(img[..., 0][inside], (cc / size)[inside], atol=1e-4)  # u = col / S
    np.testing.assert_allclose(img[..., 1][inside], (1 - rr / size)[inside], atol=1e-4)  # v = 1 - row / S
    assert np.all(img[~inside] == 0)  # background 0
    # a rasterizer returning a plain object (tri_id, bary) goes through the numpy interpolation
    def plain(v, t, h, w, cull=None):
        r = rasterize(v, t, h, w, cull=cull)
        return SimpleNamespace(tri_id=r.tri_id, bary=r.bary)

    np.testing.assert_allclose(uv_render(uv, tri, attrs, size, rasterize=plain), img, atol=1e-6)


# --- the seed's sampler and casts ----------------------------------------------------------------------------
def test_bilinear_sample_seed_clamping_quirk():
    img = np.arange(12, dtype=np.float64).reshape(3, 4) * 10  # H=3, W=4, value = 10 (4 row + col)
    # interior: ordinary bilinear
    x, y = np.array([1.25, 0.0, 2.5]), np.array([0.5, 0.0, 1.75])
    got = bilinear_sample_seed(img, x, y)
    np.testing.assert_allclose(got, 10 * (4 * y + x))
    # the last column / row exactly (x0 == x1 after clamping): the weights vanish -> 0, not img[.., -1]
    assert bilinear_sample_seed(img, [3.0], [1.0])[0] == 0.0
    assert bilinear_sample_seed(img, [1.0], [2.0])[0] == 0.0
    # outside the image: 0 as well (x = -0.5: x0 = -1 -> 0, x1 = 0: weights 0.5 and -0.5)
    assert bilinear_sample_seed(img, [-0.5], [1.0])[0] == 0.0
    assert bilinear_sample_seed(img, [3.5], [1.5])[0] == 0.0
    assert bilinear_sample_seed(img, [1.5], [-3.0])[0] == 0.0
    # the weights use the clamped integers: a standard clamped sampler would give img[1, 0] = 40
    assert bilinear_sample_seed(img, [-0.5], [1.0])[0] != img[1, 0]
    # multi-channel
    rgb = np.stack([img, img + 1, 2 * img], -1)
    np.testing.assert_allclose(bilinear_sample_seed(rgb, [1.25], [0.5])[0], [32.5, 33.5, 65.0])


def test_uint8_seed_truncates_and_wraps():
    got = uint8_seed(np.array([0.0, 254.99, 255.0, 300.7, -1.2, -0.5, np.nan]))
    assert got.dtype == np.uint8
    assert got.tolist() == [0, 254, 255, 44, 255, 0, 0]


def test_vertex_colors_from_uv():
    size = 16
    rr, cc = np.mgrid[0:size, 0:size].astype(np.float64)
    tex = np.stack([cc, rr, np.ones_like(cc)], -1)
    uv = np.array([[0.5, 0.5], [0.2, 0.7], [1.0, 0.5], [0.3, 0.0]])
    got = vertex_colors_from_uv(tex, uv)
    s1 = size - 1
    np.testing.assert_allclose(got[:2, :2], np.stack([uv[:2, 0] * s1, s1 - uv[:2, 1] * s1], 1))
    np.testing.assert_allclose(got[:2, 2], 1.0)
    assert np.all(got[2:] == 0)  # u = 1 -> last column, v = 0 -> last row: the seed sampler gives 0


# --- extractTex on a synthetic fit -------------------------------------------------------------------------
def test_extract_texture_shape_dtype_range(fit, model):
    assert inspect.signature(extract_texture_seed).parameters["size"].default == 2048
    tex = extract_texture_seed(fit, model.face_model, size=S)
    assert tex.shape == (S, S, 3) and tex.dtype == np.float64
    assert tex.min() >= 0.0 and tex.max() <= 1.0
    assert np.all(np.isclose(tex * 255, np.round(tex * 255)))  # uint8 levels / 255
    assert tex.std() > 0.05  # not a constant image
    # the FaceModel, the face_model dict and the fit dict's own triangles/uv give the same texture
    np.testing.assert_array_equal(extract_texture_seed(fit, synthetic_face_model(), size=S), tex)
    np.testing.assert_array_equal(extract_texture_seed(fit, None, size=S), tex)


def test_all_visible_comes_from_the_image_and_not_the_pca(fit, inset_model):
    fm = inset_model
    f = _with(fit, visible=np.ones_like(fit["visible"]))
    tex = extract_texture_seed(f, fm, size=S)
    src, pca, islands = _expected_src_pca(f, fm, S)
    assert np.abs(tex - src).max() <= 1.5 / 255  # the image sampling, whole texture
    assert np.abs(tex - pca)[islands].mean() > 5 / 255  # ... and visibly not the PCA texture
    # independent of the PCA colours
    other = extract_texture_seed(_with(f, face_texture=1.0 - fit["face_texture"]), fm, size=S)
    assert np.abs(other - tex).max() <= 1.5 / 255


def test_visible_texels_match_a_direct_computation(fit, inset_model):
    fm = inset_model
    f = _with(fit, visible=np.ones_like(fit["visible"]))
    tex = extract_texture_seed(f, fm, size=S)
    uv = fm["uv_coords"].astype(np.float64)
    tri = fm["tri"]
    crop = fit["crop"].astype(np.float64) / 255.0
    rng = np.random.default_rng(1)
    islands = _erode(uv_render(uv, tri, np.ones(len(uv)), S) > 0.5, 2)
    rows, cols = np.nonzero(islands)
    pick = rng.choice(len(rows), 12, replace=False)
    p0, p1, p2 = uv[tri[:, 0]], uv[tri[:, 1]], uv[tri[:, 2]]
    for r, c in zip(rows[pick], cols[pick]):
        # texel centre (c, r) back to UV through the seed mapping, then its triangle by brute force
        p = np.array([(c - SEED_UV_EPS * S / 2) / S, 1 - (r + SEED_UV_EPS * S / 2) / S])
        d = (p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p2[:, 0] - p0[:, 0]) * (p1[:, 1] - p0[:, 1])
        w1 = ((p[0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p2[:, 0] - p0[:, 0]) * (p[1] - p0[:, 1])) / d
        w2 = ((p1[:, 0] - p0[:, 0]) * (p[1] - p0[:, 1]) - (p[0] - p0[:, 0]) * (p1[:, 1] - p0[:, 1])) / d
        w0 = 1 - w1 - w2
        t = int(np.nonzero((w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9))[0][0])
        colour = np.zeros(3)
        for k, wk in zip(tri[t], (w0[t], w1[t], w2[t])):
            x, y = fit["v2d_crop"][k, 0], 223 - fit["v2d_crop"][k, 1]  # (v2d_x, 223 - v2d_y)
            ix, iy = int(np.floor(x)), int(np.floor(y))
            fx, fy = x - ix, y - iy
            sample = ((1 - fx) * (1 - fy) * crop[iy, ix] + (1 - fx) * fy * crop[iy + 1, ix]
                      + fx * (1 - fy) * crop[iy, ix + 1] + fx * fy * crop[iy + 1, ix + 1])
            colour += wk * sample
        np.testing.assert_allclose(tex[r, c], colour, atol=1.6 / 255, err_msg=f"texel {(r, c)}")


def test_all_invisible_equals_the_pca_render(fit, inset_model):
    fm = inset_model
    f = _with(fit, visible=np.zeros_like(fit["visible"]))
    tex = extract_texture_seed(f, fm, size=S)
    src, pca, islands = _expected_src_pca(f, fm, S)
    inner = _erode(islands, 1)
    assert np.abs(tex - pca)[inner].max() <= 1.5 / 255
    assert np.abs(tex - src)[inner].mean() > 5 / 255
    # the image does not matter: a black crop gives the same islands
    black = extract_texture_seed(_with(f, crop=np.zeros_like(fit["crop"])), fm, size=S)
    assert np.abs(black - tex)[inner].max() <= 1.5 / 255


def test_mixed_visibility_pca_changes_mostly_the_invisible_part(fit, inset_model):
    fm = inset_model
    uv = fm["uv_coords"]
    f = _with(fit, visible=uv[:, 0] < 0.5)  # image-left half of the atlas visible
    tex = extract_texture_seed(f, fm, size=S)
    tex_dark = extract_texture_seed(_with(f, face_texture=0.3 * fit["face_texture"]), fm, size=S)
    src, pca, islands = _expected_src_pca(f, fm, S)
    cols = np.arange(S)[None, :].repeat(S, 0)
    seam = 0.5 * S  # u = 0.5 in the inset layout (0.1 + 0.8 u)
    left = islands & (cols < seam - 0.1 * S)
    right = islands & (cols > seam + 0.1 * S)
    change = np.abs(tex_dark - tex).max(-1)
    assert change[right].mean() > 3 * change[left].mean()
    err_src, err_pca = np.abs(tex - src).max(-1), np.abs(tex - pca).max(-1)
    assert err_src[left].mean() < err_pca[left].mean()  # visible half: the image
    assert err_pca[right].mean() < err_src[right].mean()  # invisible half: the PCA texture


def test_off_crop_vertices_sample_zero(fit, inset_model):
    """The clamping quirk inside extractTex: vertices projected outside the crop get colour 0."""
    v2d = fit["v2d_crop"].copy()
    v2d[:, 0] += 400.0
    f = _with(fit, v2d_crop=v2d, visible=np.ones_like(fit["visible"]))
    tex = extract_texture_seed(f, inset_model, size=64)
    assert tex.max() == 0.0


def test_rejects_mismatched_fit(fit, model):
    with pytest.raises(ValueError, match="vertices"):
        extract_texture_seed(_with(fit, visible=fit["visible"][:-1]), model.face_model, size=32)
