"""The C++ texel kernels (texel_core.cpp) against plain numpy/OpenCV references, and the adaptive bake.

* ``bake_sample``: the bake's per-texel pass == interpolate + cv2.remap (nearest z-buffer / mask,
  bilinear colour) + front-facing LUT, the chain it replaced;
* ``resolve_supersampled``: == interpolate + k x k block means;
* ``format_rows``: the digits of Python's ``%.{p}f``;
* ``working_size`` / ``bake_texture(adaptive=True)``: a small face is baked at a reduced size and
  resampled, equal to the direct bake up to resampling noise; a large face is not reduced.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceanon._ext import _raster
from faceanon.raster import RasterResult, format_rows, interpolate, rasterize, resolve_supersampled
from faceanon.stages.texture import bake_texture, resize_texture, uv_layout, uv_to_pixels, working_size
from test_anonymize_helpers import draw_photo, grid_mesh, merge, to_image


def _bumpy_scene(seed=0, n=24, size=96):
    """A wavy grid (self-occluding folds, some back faces) over a noisy photo."""
    rng = np.random.default_rng(seed)
    v, t, uv = grid_mesh(10, 10, size - 10, size - 10, 0.0, n, (0.02, 0.02, 0.98, 0.98))
    v[:, 0] += 12 * np.sin(v[:, 0] / 6.0).astype(np.float32)  # folds in x: triangles flip over
    v[:, 2] = (20 * np.cos(v[:, 0] / 9.0)).astype(np.float32)
    img_v = to_image(v, size)
    photo = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    photo = cv2.GaussianBlur(photo, (0, 0), 1.0)
    return img_v, t, uv, photo


def _reference_sample(layout, tris, verts, front, zwin, wx0, wy0, tol, photo, valid):
    """The numpy/OpenCV chain bake_sample replaces (as bake_texture computed it before)."""
    xyz = interpolate(RasterResult(layout.tri_id, layout.bary, None, tris, len(verts)), verts)
    mapx, mapy = np.ascontiguousarray(xyz[..., 0]), np.ascontiguousarray(xyz[..., 1])
    depth = np.where(np.isfinite(zwin), zwin, np.float32(np.nan))
    zbuf = cv2.remap(depth, mapx - np.float32(wx0), mapy - np.float32(wy0), cv2.INTER_NEAREST,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"))
    lut = np.append(front.astype(bool), False)
    vis = lut[layout.tri_id] & (xyz[..., 2] >= zbuf - tol)
    if valid is not None:
        vis &= cv2.remap(valid, mapx, mapy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE) > 0
    rgb = cv2.remap(photo, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return rgb, vis


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("with_valid", [False, True])
def test_bake_sample_matches_the_numpy_opencv_chain(seed, with_valid):
    img_v, t, uv, photo = _bumpy_scene(seed)
    h, w = photo.shape[:2]
    layout = uv_layout(uv, t, 256)
    a, b, c = img_v[t[:, 0]], img_v[t[:, 1]], img_v[t[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    front = np.ascontiguousarray(area < 0).view(np.uint8)
    assert 0.1 < front.mean() < 0.9  # the folds make both kinds
    wx0, wy0 = 3, 5  # a z-buffer window offset into the photo
    zwin = rasterize(img_v - np.array([wx0, wy0, 0], np.float32), t, h - 10, w - 6).depth
    valid = None
    if with_valid:
        valid = np.ones((h, w), np.uint8)
        valid[30:60, 20:70] = 0
    uvpx = np.ascontiguousarray(uv_to_pixels(uv, 256)[:, :2])
    got_rgb, got_vis = _raster.bake_sample(layout.tri_id, uvpx, t, img_v, front, zwin, wx0, wy0,
                                           2.0, photo, valid)
    ref_rgb, ref_vis = _reference_sample(layout, t, img_v, front, zwin, wx0, wy0, 2.0, photo, valid)
    inside = layout.inside
    assert ref_vis[inside].mean() > 0.2 and (~ref_vis[inside]).mean() > 0.1
    # visibility: identical but for rounding ties of the nearest pixel (none expected here)
    assert (got_vis != ref_vis).sum() <= 2
    # colours: OpenCV quantises the bilinear weights to 1/32, the kernel does not
    diff = np.abs(got_rgb.astype(int) - ref_rgb.astype(int))[inside]
    assert diff.max() <= 2 and diff.mean() < 0.3
    assert (got_rgb[~inside] == 0).all() and not got_vis[~inside].any()


def test_bake_sample_rejects_and_skips_what_it_cannot_use():
    tri_id = np.array([[0, -1], [5, 0]], np.int32)  # 5: no such triangle
    uvpx = np.array([[0, 0], [3, 0], [0, 3]], np.float32)  # texel (col, row) -> photo (4 + col/3, 4 + row/3)
    tris = np.array([[0, 1, 2]], np.int32)
    verts = np.array([[4, 4, 1], [5, 4, 1], [4, 5, 1]], np.float32)
    photo = np.full((8, 8, 3), 200, np.uint8)
    zwin = np.full((8, 8), 1.0, np.float32)
    one = np.ones(1, np.uint8)
    rgb, vis = _raster.bake_sample(tri_id, uvpx, tris, verts, one, zwin, 0, 0, 0.5, photo, None)
    assert vis.tolist() == [[True, False], [False, True]]
    assert rgb[0, 0].tolist() == [200, 200, 200] and rgb[1, 0].tolist() == [0, 0, 0]
    # a non-finite vertex: no colour, not visible; behind the z-buffer: coloured, not visible
    bad = verts.copy()
    bad[1, 0] = np.nan
    rgb, vis = _raster.bake_sample(tri_id, uvpx, tris, bad, one, zwin, 0, 0, 0.5, photo, None)
    assert not vis.any() and (rgb == 0).all()
    rgb, vis = _raster.bake_sample(tri_id, uvpx, tris, verts, one, zwin + 5, 0, 0, 0.5, photo, None)
    assert not vis.any() and rgb[0, 0].tolist() == [200, 200, 200]
    # a degenerate UV triangle owns no texel
    flat = np.array([[0, 0], [3, 0], [6, 0]], np.float32)
    rgb, vis = _raster.bake_sample(tri_id, flat, tris, verts, one, zwin, 0, 0, 0.5, photo, None)
    assert not vis.any() and (rgb == 0).all()
    # the position follows the affine map: a photo with a gradient gives the texel's position back
    grad = np.zeros((8, 8, 3), np.uint8)
    grad[..., 0] = np.arange(8, dtype=np.uint8)[None, :] * 30  # red = 30 x column
    grad[..., 1] = np.arange(8, dtype=np.uint8)[:, None] * 30  # green = 30 x row
    tid = np.zeros((4, 4), np.int32)
    rgb, _ = _raster.bake_sample(tid, uvpx, tris, verts, one, zwin, 0, 0, 0.5, grad, None)
    cols, rows = np.meshgrid(np.arange(4), np.arange(4))
    np.testing.assert_allclose(rgb[..., 0], np.rint(30 * (4 + cols / 3)), atol=1)
    np.testing.assert_allclose(rgb[..., 1], np.rint(30 * (4 + rows / 3)), atol=1)
    with pytest.raises(ValueError, match="front"):
        _raster.bake_sample(tri_id, uvpx, tris, verts, np.ones(2, np.uint8), zwin, 0, 0, 0.5, photo, None)
    with pytest.raises(ValueError, match="valid"):
        _raster.bake_sample(tri_id, uvpx, tris, verts, one, zwin, 0, 0, 0.5, photo, np.ones((3, 3), np.uint8))
    with pytest.raises(ValueError, match="uvpx"):
        _raster.bake_sample(tri_id, uvpx[:2], tris, verts, one, zwin, 0, 0, 0.5, photo, None)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_resolve_supersampled_equals_interpolate_then_block_means(k):
    img_v, t, uv, _ = _bumpy_scene(1, size=60)
    r = rasterize(img_v * np.array([k, k, 1], np.float32) + np.float32([0.5, 0.5, 0]), t, 60 * k, 60 * k)
    attrs = np.c_[uv, img_v[:, 2]].astype(np.float64)
    alpha, mean = resolve_supersampled(r, k, attrs)
    cover = r.mask.astype(np.float64).reshape(60, k, 60, k).mean(axis=(1, 3))
    np.testing.assert_allclose(alpha, cover, atol=1e-7)
    full = interpolate(r, attrs).astype(np.float64).reshape(60, k, 60, k, 3).sum(axis=(1, 3))
    expect = np.where(cover[..., None] > 0, full / np.maximum(cover * k * k, 1e-9)[..., None], 0.0)
    np.testing.assert_allclose(mean, expect, atol=1e-4)
    assert 0 < (alpha == 1).mean() < 1 and ((alpha > 0) & (alpha < 1)).any() == (k > 1)


def test_resolve_supersampled_argument_errors():
    img_v, t, _, _ = _bumpy_scene(0, size=40)
    r = rasterize(img_v, t, 40, 40)
    with pytest.raises(ValueError, match="multiple"):
        resolve_supersampled(r, 3, np.zeros((len(img_v), 2)))
    with pytest.raises(ValueError, match="attrs"):
        resolve_supersampled(r, 2, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="k must"):
        resolve_supersampled(r, 0, np.zeros((len(img_v), 2)))


@pytest.mark.parametrize("precision", [0, 3, 6, 17])
def test_format_rows_has_pythons_digits(precision):
    rng = np.random.default_rng(precision)
    v = rng.normal(size=(500, 3)) * np.array([1e5, 1.0, 1e-7])
    v[:4] = [[-0.0, 0.0, 0.5], [2.5, -2.5, 1e-300], [1e15, -1e15, 0.125], [0.0000005, 1.0000005, 9.9999995]]
    fmt = f"%.{precision}f"
    expect = "".join(f"v {fmt % a} {fmt % b} {fmt % c}\n" for a, b, c in v.tolist())
    assert format_rows(v, precision, "v") == expect
    assert format_rows(v[:, :2], precision, "vt").splitlines()[7] == f"vt {fmt % v[7, 0]} {fmt % v[7, 1]}"


def test_format_rows_refuses_non_finite():
    with pytest.raises(ValueError, match="finite"):
        format_rows(np.array([[1.0, np.nan]]), 6, "v")
    assert format_rows(np.zeros((0, 3)), 6, "v") == ""


# ----------------------------------------------------------------------------------------------
# adaptive bake


def test_resize_texture_keeps_the_texel_centre_convention():
    """A texture linear in (u, v) stays linear after resampling: texel i sits at u = i/(T-1) (OpenCV
    quantises bilinear weights to 1/32 texel: 0.1 value units here; a cv2.resize-style half-texel
    convention would be off by up to 0.8)."""
    small = 64
    i = np.arange(small, dtype=np.float64) / (small - 1)
    tex = np.stack(np.meshgrid(i * 200, i * 100), axis=-1).astype(np.float32)
    big = resize_texture(tex, 257)
    j = np.arange(257, dtype=np.float64) / 256
    np.testing.assert_allclose(big[..., 0], np.broadcast_to(j * 200, (257, 257)), atol=0.06)
    np.testing.assert_allclose(big[..., 1], np.broadcast_to((j * 100)[:, None], (257, 257)), atol=0.06)


def _face_scene(photo_side: int, face_side: float, seed=3):
    rng = np.random.default_rng(seed)
    lo = (photo_side - face_side) / 2
    v, t, uv = grid_mesh(lo, lo, lo + face_side, lo + face_side, 0.0, 16, (0.04, 0.04, 0.96, 0.96))
    v[:, 2] = (0.2 * face_side * np.exp(-((v[:, 0] - photo_side / 2) ** 2 + (v[:, 1] - photo_side / 2) ** 2)
                                        / (0.1 * face_side**2))).astype(np.float32)
    img_v = to_image(v, photo_side)
    yy, xx = np.mgrid[0:photo_side, 0:photo_side]
    photo = np.stack([128 + 60 * np.sin(xx / 4.0), 128 + 60 * np.cos(yy / 5.0), 128 + 40 * np.sin((xx + yy) / 7.0)],
                     axis=-1)
    photo = np.clip(photo + rng.normal(0, 3, photo.shape), 0, 255).astype(np.uint8)
    return img_v, t, uv, photo


def test_working_size_follows_the_face_size_in_the_photo():
    img_v, t, uv, _ = _face_scene(200, 100)  # 100 px face on a 1024 texture: ~10 texels per px
    assert working_size(img_v, t, uv, 1024) == 256  # never below size // 4
    img_v, t, uv, _ = _face_scene(1200, 1000)  # ~1 texel per px: nothing to gain
    assert working_size(img_v, t, uv, 1024) == 1024
    img_v, t, uv, _ = _face_scene(700, 400)  # ~2.4 texels per px at 1024 -> 512 would give 1.2
    assert working_size(img_v, t, uv, 1024) == 1024
    img_v, t, uv, _ = _face_scene(500, 240)  # ~3.9 texels per px -> 512 would give 1.96 < 2
    assert working_size(img_v, t, uv, 1024) == 1024
    img_v, t, uv, _ = _face_scene(500, 200)  # ~4.7 texels per px -> 512 keeps 2.35, 256 would not
    assert working_size(img_v, t, uv, 1024) == 512
    assert working_size(img_v, t, uv, 128) == 128  # MIN_WORKING_SIZE
    back = img_v.copy()
    back[:, 0] = 500 - back[:, 0]  # mirrored: every triangle faces away, nothing to measure
    assert working_size(back, t, uv, 1024) == 1024


def test_adaptive_bake_equals_the_direct_bake_up_to_resampling():
    img_v, t, uv, photo = _face_scene(400, 180)
    size = 1024
    assert working_size(img_v, t, uv, size) < size
    direct, src_d = bake_texture(photo, img_v, t, uv, size, adaptive=False)
    adapt, src_a = bake_texture(photo, img_v, t, uv, size)
    assert adapt.shape == direct.shape == (size, size, 3) and src_a.shape == (size, size)
    inside = uv_layout(uv, t, size).inside
    assert ((src_a > 0) == inside).all()  # gutter exactly outside the islands
    both = (src_a == 1) & (src_d == 1)
    assert both.sum() > 0.9 * (src_d == 1).sum()
    err = direct[both].astype(float) - adapt[both].astype(float)
    psnr = 10 * np.log10(255.0**2 / np.mean(err**2))
    assert psnr > 40, psnr
    # and it really is resampled from fewer texels: the direct bake has finer detail
    assert not np.array_equal(direct, adapt)
