"""stages/warp: the in-place warp moves pixels exactly as a known morph says, stays continuous at the
face outline, flags what the photo could not see, and leaves everything beyond its fade radius
bit-identical."""

from __future__ import annotations

import numpy as np
import pytest

from faceanon.stages.composite import CompositeFace, composite_image
from faceanon.stages.warp import FADE_FRACTION, face_size, face_warp, warp_image, warp_mask

from test_composite import grid  # a flat, front-facing quad grid with UVs

H, W = 240, 320


def smooth_texture(seed=0) -> np.ndarray:
    """A smooth random photo (bicubic sampling of it is accurate to well under a grey level)."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (H // 8, W // 8, 3)).astype(np.uint8)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)


def test_a_translated_face_moves_its_pixels_by_the_morph():
    """target = source + d: the photo content at source position p must appear at p + d."""
    rgb = smooth_texture()
    src, tris, _ = grid(100, 70, 200, 170)
    d = np.array([6.0, -4.0, 0.0], np.float32)
    wp = face_warp(src, src + d, tris, H, W)
    out = warp_image(rgb, [wp])
    # deep inside the moved face: out(q) == rgb(q - d)
    ys, xs = np.mgrid[90:150, 120:180]
    got = out[ys, xs].astype(int)
    want = rgb[ys - int(d[1]), xs - int(d[0])].astype(int)
    assert np.abs(got - want).max() <= 1
    assert np.abs(out.astype(int) - rgb.astype(int))[ys, xs].mean() > 5  # it did move


def test_a_scaled_grid_follows_the_known_map():
    """target = source scaled by 1.2 about the face centre: pixel q shows rgb at c + (q - c) / 1.2."""
    import cv2

    rgb = smooth_texture(1)
    src, tris, _ = grid(110, 70, 210, 170)
    c = np.array([160.0, 120.0, 0.0], np.float32)
    tgt = (src - c) * np.float32(1.2) + c
    out = warp_image(rgb, [face_warp(src, tgt, tris, H, W)])
    ys, xs = np.mgrid[85:155, 115:205].astype(np.float32)
    mx = c[0] + (xs - c[0]) / 1.2
    my = c[1] + (ys - c[1]) / 1.2
    want = cv2.remap(rgb, mx, my, cv2.INTER_CUBIC)
    got = out[85:155, 115:205]
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 2


def test_pixels_beyond_the_fade_radius_are_bit_identical():
    rgb = smooth_texture(2)
    src, tris, _ = grid(120, 80, 200, 160)
    tgt = src.copy()
    tgt[:, 0] = 160 + (src[:, 0] - 160) * 0.8  # a narrower face: the surroundings must follow
    wp = face_warp(src, tgt, tris, H, W)
    out = warp_image(rgb, [wp])
    size = max(face_size(src), face_size(tgt))
    radius = FADE_FRACTION * size
    yy, xx = np.mgrid[0:H, 0:W]
    # distance to the union of both faces' boxes: beyond radius + 2 px nothing may change
    dx = np.maximum(np.maximum(120 - xx, xx - 200), 0)
    dy = np.maximum(np.maximum(80 - yy, yy - 160), 0)
    far = np.hypot(dx, dy) > radius + 2
    assert far.any() and np.array_equal(out[far], rgb[far])
    near = (np.hypot(dx, dy) > 0) & ~far
    assert (out[near] != rgb[near]).any()  # the surroundings did move with the narrower outline


def test_the_field_is_continuous_across_the_outline_and_does_not_fold():
    """No seam and no fold: the backward map q -> q + field(q) is monotonic along x and y (a fold would
    show the same pixels twice), including where the exact field meets the continued one, and it has
    no tear (neighbouring source positions never more than ~1 px further apart than the pixels)."""
    src, tris, _ = grid(110, 70, 210, 170)
    tgt = src.copy()
    tgt[:, 0] = 160 + (src[:, 0] - 160) * 0.85  # a face 15 % narrower, and lower by 5 px
    tgt[:, 1] += 5.0
    wp = face_warp(src, tgt, tris, H, W)
    f = wp.field
    dfx = np.diff(f[..., 0], axis=1)
    dfy = np.diff(f[..., 1], axis=0)
    assert (1.0 + dfx).min() > 0.2 and (1.0 + dfy).min() > 0.2  # monotonic: no fold
    tear = max(np.abs(np.diff(f, axis=0)).max(), np.abs(np.diff(f, axis=1)).max())
    assert tear < 1.5, tear
    # and the continuation starts from the outline's own displacement: across the outline the field
    # changes no more than along it
    x0, y0 = wp.window[:2]
    row = 120 - y0
    left = int(np.argmax(wp.covered[row]))  # first covered column of the row
    step_across = abs(f[row, left, 0] - f[row, left - 1, 0])
    step_outside = abs(f[row, left - 1, 0] - f[row, left - 2, 0])
    assert step_across < step_outside + 0.3


def test_hidden_surface_is_flagged():
    """A front square hides part of a back plane; the morph moves the square away: the back plane's
    newly shown pixels were not visible in the photo and are flagged hidden, the rest are not."""
    back, bt, _ = grid(60, 40, 260, 200, n=20, z=0.0)
    front, ft, _ = grid(130, 90, 190, 150, n=6, z=50.0)
    src = np.concatenate([back, front])
    tris = np.concatenate([bt, ft + len(back)])
    tgt = src.copy()
    tgt[len(back):, 0] += 40.0  # the square slides right by 40 px
    wp = face_warp(src, tgt, tris, H, W)
    x0, y0 = wp.window[:2]
    hid = np.zeros((H, W), bool)
    hid[y0:y0 + wp.hidden.shape[0], x0:x0 + wp.hidden.shape[1]] = wp.hidden
    assert hid[100:140, 135:165].mean() > 0.95  # back plane where the square was
    assert not hid[100:140, 60:120].any()  # back plane that was always visible
    assert not hid[100:140, 175:225].any()  # the square itself, at its new place


def test_warp_mask_moves_a_mask_with_the_photo():
    src, tris, _ = grid(100, 70, 200, 170)
    d = np.array([8.0, 0.0, 0.0], np.float32)
    wp = face_warp(src, src + d, tris, H, W)
    m = np.zeros((H, W), bool)
    m[110:120, 140:150] = True
    moved = warp_mask(m, [wp])
    assert moved[110:120, 148:158].all() and not moved[110:120, 140:147].any()


def test_composite_in_place_uses_the_photo_not_the_texture_outside_the_overlay():
    """With source vertices the composite is the warped base (the texture only where ``overlay``
    asks), and pixels far from the face are the base's, bit for bit."""
    rgb = smooth_texture(3)
    src, tris, uv = grid(110, 70, 210, 170)
    tex = np.zeros((64, 64, 3), np.uint8)  # a black texture: any texture pixel would show
    ov = np.zeros(len(src), np.float32)
    ov[(uv[:, 0] < 0.3) & (uv[:, 1] > 0.7)] = 1.0  # one corner of the face shows the texture
    face = CompositeFace(vertices=src + np.float32([3, 0, 0]), triangles=tris, uv=uv, texture=tex,
                         source_vertices=src, overlay=ov)
    out = composite_image(rgb, [face])
    assert out[150:165, 180:200].min() > 0 or np.abs(out[150:165, 180:200].astype(int)
                                                      - rgb[150:165, 177:197].astype(int)).max() <= 2
    assert out[72:90, 115:135].max() < 20  # the overlay corner is the black texture
    assert np.array_equal(out[:, :40], rgb[:, :40])


@pytest.mark.parametrize("bad", ["nan", "shape"])
def test_face_warp_checks_its_inputs(bad):
    src, tris, _ = grid(100, 70, 200, 170)
    tgt = src.copy()
    if bad == "nan":
        tgt[0, 0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            face_warp(src, tgt, tris, H, W)
    else:
        with pytest.raises(ValueError, match="rows"):
            face_warp(src, tgt[:-1], tris, H, W)


def test_two_overlapping_faces_warp_in_one_pass_whatever_their_order():
    rgb = smooth_texture(4)
    a, ta, _ = grid(60, 60, 140, 140)
    b, tb, _ = grid(150, 70, 230, 150)
    wa = face_warp(a, a + np.float32([4, 0, 0]), ta, H, W)
    wb = face_warp(b, b + np.float32([-4, 0, 0]), tb, H, W)
    assert np.array_equal(warp_image(rgb, [wa, wb]), warp_image(rgb, [wb, wa]))


def test_a_large_face_is_warped_from_a_reduced_scale_field(monkeypatch):
    """Above MAX_SIDE the field is computed at a reduced scale and upsampled: a smooth (here affine)
    morph still moves the pixels where it says, and the UV lookups come back at full resolution."""
    import faceanon.stages.warp as warp_mod

    monkeypatch.setattr(warp_mod, "MAX_SIDE", 90)
    rgb = smooth_texture(5)
    src, tris, uv = grid(100, 70, 200, 170)
    c = np.array([150.0, 120.0, 0.0], np.float32)
    tgt = (src - c) * np.float32(1.1) + c + np.float32([4, -3, 0])
    wp = face_warp(src, tgt, tris, H, W)
    assert wp.scale < 1.0
    out = warp_image(rgb, [wp])
    ys, xs = np.mgrid[90:150, 120:180].astype(np.float32)
    import cv2

    mx = c[0] + (xs - 4 - c[0]) / 1.1
    my = c[1] + (ys + 3 - c[1]) / 1.1
    want = cv2.remap(rgb, mx, my, cv2.INTER_CUBIC)
    assert np.abs(out[90:150, 120:180].astype(int) - want.astype(int)).mean() < 1.0
    u = wp.interpolate(uv.astype(np.float64))
    assert u.shape[:2] == wp.covered.shape and np.abs(u[~wp.covered]).max() == 0
