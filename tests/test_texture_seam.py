"""Mirror fill of hidden texels: no seam, no brightness step, detail kept (faceanon.stages.texture)."""

from __future__ import annotations

import numpy as np

from faceanon.stages.texture import _mirror_fill


def _scene(size=256):
    """Visible texels x >= 100: a bright strip (x < 156, value 200) next to a dark, textured side
    (x >= 156, value 100 +- 12 checker). Hidden texels x < 100 mirror the dark side (x' = 255 - x)."""
    x = np.arange(size)[None, :].repeat(size, 0)
    y = np.arange(size)[:, None].repeat(size, 1)
    img = np.zeros((size, size, 3), np.uint8)
    checker = np.where(((x // 4) + (y // 4)) % 2 == 0, 12, -12)
    img[..., :] = np.where(x < 156, 200, 100 + checker)[..., None].astype(np.uint8)
    visible = x >= 100
    cand = ~visible & visible[:, ::-1]
    img[~visible] = 0  # unknown before the fill
    return img, visible, cand


def test_no_step_at_the_boundary_and_detail_kept():
    img, visible, cand = _scene()
    naive = img.copy()
    naive[cand] = np.flip(img, axis=1)[cand]
    step_naive = abs(naive[:, 99].astype(float).mean() - naive[:, 100].astype(float).mean())
    assert step_naive > 80  # the problem: a plain mirror copy leaves a hard step

    _mirror_fill(img, visible, cand)
    step = abs(img[:, 99].astype(float).mean() - img[:, 100].astype(float).mean())
    assert step < 15, step
    far = img[:, :40].astype(float)
    assert far.mean() > 150  # re-lit toward the photo side's brightness next to it
    assert far.std() > 5  # the mirrored checker detail survives
    assert np.array_equal(img[visible], _scene()[0][visible])  # visible texels untouched


def _grid_mesh(n=12, x0=20.0, y0=30.0, side=60.0):
    """A flat n x n grid facing the camera: image-px vertices, UVs, CCW-in-y-up triangles."""
    u, v = np.meshgrid(np.linspace(0.05, 0.95, n), np.linspace(0.05, 0.95, n))
    uv = np.stack([u.ravel(), v.ravel()], 1).astype(np.float32)
    verts = np.stack([x0 + side * uv[:, 0], y0 + side * (1 - uv[:, 1]), np.full(n * n, 5.0)], 1).astype(np.float32)
    tris = []
    for r in range(n - 1):
        for c in range(n - 1):
            a, b, d, e = r * n + c, r * n + c + 1, (r + 1) * n + c, (r + 1) * n + c + 1
            tris += [[a, b, e], [a, e, d]]
    t = np.array(tris, np.int32)
    # wind front-facing: negative image-space signed area (project convention)
    p = verts
    area = (p[t[:, 1], 0] - p[t[:, 0], 0]) * (p[t[:, 2], 1] - p[t[:, 0], 1]) - \
        (p[t[:, 2], 0] - p[t[:, 0], 0]) * (p[t[:, 1], 1] - p[t[:, 0], 1])
    t[area > 0] = t[area > 0][:, ::-1]
    return verts, t, uv


def test_bake_only_rasterizes_the_face_window_same_result_in_a_big_frame():
    from faceanon.stages.texture import bake_texture

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (120, 110, 3), dtype=np.uint8)
    verts, tris, uv = _grid_mesh()
    tex_small, src_small = bake_texture(photo, verts, tris, uv, 64)
    big = np.zeros((3000, 4000, 3), np.uint8)
    big[1000:1120, 2000:2110] = photo
    moved = verts + np.array([2000, 1000, 0], np.float32)
    tex_big, src_big = bake_texture(big, moved, tris, uv, 64)
    assert np.array_equal(src_small, src_big)
    assert np.abs(tex_small.astype(int) - tex_big).max() <= 1
    assert (src_small == 1).sum() > 1000  # the face really was sampled


def test_texels_at_a_visibility_edge_are_not_sampled_from_across_it():
    """The photo is skin-coloured where the face may be sampled and blue beyond the edge of ``valid``
    (a profile's silhouette against the sky, in miniature). No texel of the bake may carry blue: the
    texels whose bilinear sample straddles the edge are filled like the hidden ones."""
    from faceanon.stages.texture import bake_texture

    skin = np.array([200, 150, 120], np.uint8)
    photo = np.empty((120, 110, 3), np.uint8)
    photo[:] = skin
    photo[:, 55:] = (40, 90, 230)  # the background beyond the edge
    valid = np.zeros((120, 110), bool)
    valid[:, :55] = True
    verts, tris, uv = _grid_mesh()  # x from 20 to 80 px: the edge at x = 55 crosses it
    size = 512
    tex, src = bake_texture(photo, verts, tris, uv, size, valid=valid, symmetric_fill=False, adaptive=False)
    sampled, hidden = src == 1, src == 3
    assert sampled.sum() > 1000 and hidden.sum() > 1000
    on = src > 0
    blue_shift = tex[on].astype(int)[:, 2] - int(skin[2])
    assert blue_shift.max() <= 2, blue_shift.max()  # no texel picked up the background
    # and what was dropped is only a thin band along the edge: 35 of the grid's 60 px are valid
    assert 0.5 < sampled.sum() / on.sum() < 35 / 60
