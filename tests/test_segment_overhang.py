"""overhang_mask: the background and hair a fit's projection covers are no texture source; skin and
the lesions on it are (faceanon/stages/segment.py, docs/anonymization.md)."""

from __future__ import annotations

import numpy as np
import pytest

from faceanon.stages.anonymize import anonymize_face
from faceanon.stages.segment import OVERHANG_BAND, overhang_mask

SKIN = (205, 150, 125)
SKY = (70, 130, 220)
MOLE = (90, 55, 45)


def _scene(grey: bool = False):
    """A 200 x 200 photo: sky, a skin disc of radius 60 at (100, 100) with a mole at its centre; the
    'fit' covers a disc of radius 70 (10 px of sky overhang all round; the mesh of the last test lies within it)
    plus a "nose" wedge reaching 14 px
    further into the sky on the right. Returns (rgb, labels, true_face, fit)."""
    yy, xx = np.mgrid[:200, :200]
    r = np.hypot(xx - 100, yy - 100)
    face = r <= 60
    fit = (r <= 70) | ((xx > 150) & (xx < 184) & (np.abs(yy - 100) < 6))
    rgb = np.empty((200, 200, 3), np.uint8)
    rgb[:] = SKY
    rgb[face] = SKIN
    rgb[r <= 5] = MOLE
    if grey:
        g = rgb.mean(axis=2, keepdims=True).astype(np.uint8)
        rgb = np.repeat(np.where(face[..., None], g, 235), 3, axis=2).astype(np.uint8)
        rgb[r <= 5] = 60
    labels = np.where(fit, 8, 0).astype(np.uint8)
    return rgb, labels, face, fit


@pytest.mark.parametrize("grey", [False, True])
def test_the_overhang_is_found_and_the_skin_and_its_mole_are_kept(grey):
    rgb, labels, face, fit = _scene(grey)
    m = overhang_mask(rgb, labels)
    overhang = fit & ~face
    assert m[overhang].all()  # every sky pixel the fit covers
    assert not m[~fit].any()  # nothing outside the projection
    yy, xx = np.mgrid[:200, :200]
    deep = np.hypot(xx - 100, yy - 100) <= 50
    assert not m[deep].any()  # the skin (mole included) away from the edge stays a source
    # at most the few px grown into the skin at the edge (the blended pixels of a real photo)
    assert m[face].sum() < 0.08 * face.sum()


def test_a_dark_patch_deep_inside_is_not_overhang_but_the_same_patch_at_the_edge_is():
    rgb, labels, face, fit = _scene()
    yy, xx = np.mgrid[:200, :200]
    rgb[np.hypot(xx - 100, yy - 60) <= 8] = SKY  # a sky-coloured patch inside the skin, not touching the edge
    m = overhang_mask(rgb, labels)
    assert not m[np.hypot(xx - 100, yy - 60) <= 6].any()


def test_only_a_band_at_the_outline_counts():
    # a sky region reaching deep into the projection is cut at OVERHANG_BAND x the face size
    rgb, labels, face, fit = _scene()
    rgb[:, 130:] = SKY  # 40 px into the fit (the skin stays the majority of the projection)
    m = overhang_mask(rgb, labels)
    size = np.sqrt(fit.sum())
    assert m[100, 168]  # near the outline
    assert not m[100, 100 + int(70 - (OVERHANG_BAND + 0.03) * size)]  # beyond the band (+ the grown px)


def test_no_skin_or_no_face_gives_an_empty_mask():
    rgb, labels, face, fit = _scene()
    assert not overhang_mask(rgb, np.zeros_like(labels)).any()
    assert not overhang_mask(rgb, np.where(fit, 5, 0).astype(np.uint8)).any()  # no skin label to compare with


def test_the_texture_takes_no_overhang_colour():
    """A flat grid 'mesh' over the fit disc, baked with and without the mask: with it no texel has the
    sky's colour, and the mole is still in the texture."""
    rgb, labels, face, fit = _scene()
    n = 41
    gy, gx = np.mgrid[:n, :n]
    xs = 100 + (gx - n // 2) * (66.0 / (n // 2))
    ys = 100 + (gy - n // 2) * (66.0 / (n // 2))
    verts = np.stack([xs.ravel(), ys.ravel(), np.full(n * n, 100.0)], axis=1).astype(np.float32)
    idx = (gy * n + gx)[:-1, :-1].ravel()
    # outward CCW in a y-up frame = clockwise in image px (y down)
    tris = np.concatenate([np.stack([idx, idx + n, idx + 1], 1), np.stack([idx + 1, idx + n, idx + n + 1], 1)])
    inside = np.hypot(verts[tris, 0].mean(1) - 100, verts[tris, 1].mean(1) - 100) <= 66
    tris = tris[inside].astype(np.int32)
    uv = np.stack([gx.ravel() / (n - 1), 1.0 - gy.ravel() / (n - 1)], 1).astype(np.float32)
    mean = np.stack([verts[:, 0], -verts[:, 1], verts[:, 2]], 1)

    def sky_share(valid):
        a = anonymize_face(verts, tris, uv, rgb, mean, alpha=0.0, tex_size=128, valid=valid)
        tex = a.texture[a.texture_source > 0].reshape(-1, 3).astype(int)
        sky = (np.abs(tex - np.array(SKY)).sum(axis=1) < 60).mean()
        mole = (np.abs(tex - np.array(MOLE)).sum(axis=1) < 30).sum()
        return sky, mole

    sky0, mole0 = sky_share(None)
    sky1, mole1 = sky_share(~overhang_mask(rgb, labels))
    assert sky0 > 0.05  # the test can fail: without the mask the sky is in the texture
    assert sky1 == 0.0
    assert mole1 > 0 and mole1 >= 0.8 * mole0


# --- the fill meets lit skin without an edge, and keeps hair out ----------------------------------

def test_the_fill_continues_lit_skin_and_keeps_hair_out():
    """A removed band whose upper border is lit, paler skin (brighter than the face's median skin and
    farther from it than SKIN_LAB_DISTANCE) and whose lower border is dark hair: the fill starts from
    the lit skin's colour at the top (no edge, the eos_image_0010 case) and is skin, not hair, a few px
    above the hair."""
    from faceanon.stages.segment import SegmentFace, _unlike_skin, segment_image

    skin, lit, hair = (190, 130, 100), (250, 228, 212), (55, 38, 30)
    rgb = np.empty((240, 240, 3), np.uint8)
    rgb[:] = skin
    rgb[40:80] = lit
    rgb[140:170] = hair
    labels = np.zeros((240, 240), np.uint8)
    labels[20:220, 20:220] = 8
    labels[90:130, 100:140] = 1  # the "eye": removed with its margin (0 here)
    # the scenario is the one the rule is for: the lit skin is "unlike" the median skin by colour
    assert _unlike_skin(rgb, labels == 8)[60, 120]
    assert not _unlike_skin(rgb, labels == 8, darker_only=True)[60, 120]
    assert _unlike_skin(rgb, labels == 8, darker_only=True)[150, 120]
    # the band from the lit skin down to the hair, removed below (narrow: the skin beside it stays the
    # majority of the fill's window, whose median colour is "the skin")
    rgb[80:140, 100:140] = lit
    labels[80:140, 100:140] = 1
    out, removed = segment_image(rgb, [SegmentFace(labels=labels, inter_ocular=60.0)], margin=0.0,
                                 feather_px=0.0, grain=True)
    assert removed[80:140, 100:140].all() and not removed[:80].any()
    fill = out[:, :, :3].astype(float)
    top = fill[81:84, 110:130].reshape(-1, 3).mean(axis=0)
    assert np.abs(top - lit).max() < 20, top  # meets the lit skin (the old rule: ~95 below it, a step)
    above_hair = fill[128:132, 110:130].reshape(-1, 3).mean(axis=0)
    assert above_hair.mean() > np.mean(hair) + 60, above_hair  # no hair smeared up into the fill


def test_the_fill_meets_the_background_soft_at_the_face_outline():
    """A removal reaching past the face's outline: the on-face fill (skin) and the off-face fill
    (background) meet over about a px (OUTLINE_SOFT) instead of switching at the rasterized outline's
    staircase; a few px from the outline each side has its own colour."""
    from faceanon.stages.segment import SegmentFace, segment_image

    skin, wall = (200, 140, 110), (225, 232, 240)
    yy, xx = np.mgrid[:240, :240]
    face = np.hypot(xx - 120, yy - 120) <= 80
    rgb = np.where(face[..., None], np.array(skin, np.uint8), np.array(wall, np.uint8)).astype(np.uint8)
    labels = np.where(face, 8, 0).astype(np.uint8)
    labels[110:130, 175:195] = 1  # an "eye" at the outline; the margin carries the removal past it
    out, removed = segment_image(rgb, [SegmentFace(labels=labels, inter_ocular=60.0)], margin=0.3,
                                 feather_px=0.0, grain=True)  # the features fill (grain 0 on flat skin)
    assert removed[120, 205] and removed[120, 185]  # off and on the face
    row = out[120, :, :3].astype(float)
    edge = int(np.nonzero(face[120])[0].max())  # last face px on the row
    assert np.abs(row[edge - 4] - skin).max() < 12 and np.abs(row[edge + 5] - wall).max() < 12
    lo, hi = np.minimum(skin, wall), np.maximum(skin, wall)
    between = lambda p: bool(np.all(p > lo + 5) and np.all(p < hi - 5))
    assert between(row[edge]) or between(row[edge + 1])  # a blended px at the outline


def test_ignored_pixels_never_matter():
    """``ignore`` (the fill passes the removed eyes and lips): their colour changes nothing of the mask,
    and none of them is overhang."""
    rgb, labels, face, fit = _scene()
    yy, xx = np.mgrid[:200, :200]
    ignore = np.hypot(xx - 150, yy - 100) <= 22  # reaches across the outline into the sky
    a = overhang_mask(rgb, labels, ignore=ignore)
    noisy = rgb.copy()
    noisy[ignore] = np.random.default_rng(0).integers(0, 256, (int(ignore.sum()), 3), dtype=np.uint8)
    b = overhang_mask(noisy, labels, ignore=ignore)
    assert not a[ignore].any()
    np.testing.assert_array_equal(a, b)
    assert a[fit & ~face & ~ignore].any()  # the rest of the overhang is still found


def test_the_fill_takes_no_colour_from_the_overhang():
    """An eye near the outline: its removal reaches the sky the fit overhangs. The pixels filled on the
    true face are skin-coloured - the light wall behind the face (lighter than the skin, so not kept
    out as hair), inside the fit's projection but beyond the face, is no source (it made a profile's
    nose bridge pale, and another photo's background across a cheek a white blob)."""
    from faceanon.stages.segment import SegmentFace, segment_image

    rgb, labels, face, fit = _scene()
    rgb[~face] = (242, 238, 230)  # a light wall instead of the sky
    yy, xx = np.mgrid[:200, :200]
    eye = ((xx - 145) / 12.0) ** 2 + ((yy - 100) / 6.0) ** 2 <= 1.0
    rgb[eye] = (40, 35, 30)
    labels = labels.copy()
    labels[eye] = 1
    out, removed = segment_image(rgb, [SegmentFace(labels=labels, inter_ocular=60.0)], grain=True, margin=0.25)
    assert removed[fit & ~face].any()  # the removal does reach the overhang
    filled = removed & face & (np.hypot(xx - 100, yy - 100) <= 58)
    got = out[..., :3][filled].astype(np.float64).mean(axis=0)
    assert np.abs(got - np.array(SKIN)).max() < 6, got
