"""render stage: frontal camera orientation, centring, anti-aliased alpha, backgrounds, depth, PyTorch3D."""

from __future__ import annotations

import numpy as np
import pytest

from faceanon.errors import FaceanonError, UsageError
from faceanon.stages.render import front_camera, render_front
from test_anonymize_helpers import bfm, grid_mesh, label_colours, merge, paint_texture  # noqa: F401


def _flat_texture(colour, size=16):
    return np.full((size, size, 3), colour, np.uint8)


def _asymmetric_mesh():
    """Two quads in a y-up frame: a RED one at x < 0 (top-left, like the subject's right eye seen from
    the front) and a BLUE one at x > 0 lower down; UVs: red in the left half, blue in the right half."""
    red = grid_mesh(-1.0, 0.2, -0.2, 1.0, 0.0, 2, (0.02, 0.02, 0.45, 0.98))
    blue = grid_mesh(0.2, -1.0, 1.0, -0.2, 0.0, 2, (0.55, 0.02, 0.98, 0.98))
    v, t, uv = merge(red, blue)
    tex = np.zeros((64, 64, 3), np.uint8)
    tex[:, :32] = (255, 0, 0)
    tex[:, 32:] = (0, 0, 255)
    return v, t, uv, tex


def _centroid(mask):
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean()


def test_model_plus_x_is_image_right_and_plus_y_is_up():
    v, t, uv, tex = _asymmetric_mesh()
    img = render_front(v, t, uv, tex, img_size=128, background="white")
    red = (img[..., 0] > 200) & (img[..., 2] < 60)
    blue = (img[..., 2] > 200) & (img[..., 0] < 60)
    (rx, ry), (bx, by) = _centroid(red), _centroid(blue)
    assert rx < 64 < bx, "model x < 0 must be on the image LEFT (camera in front of the face)"
    assert ry < 64 < by, "model +y must be image UP"


def test_real_face_labels_render_right_eye_on_the_image_left(bfm):
    """Label 1 (subject's right eye, model x < 0) on the image LEFT, label 2 on the right, both above the
    lips: upright and not mirrored (the seed's PyTorch3D view was mirrored, seed bug S-27 in docs/seed_compatibility.md)."""
    mean, tri, uv, labels = bfm.mean_vertices, bfm.triangles, bfm.uv, bfm.labels
    assert mean[labels == 1, 0].mean() < 0 < mean[labels == 2, 0].mean()
    tex = paint_texture(uv, tri, label_colours(labels), 512)
    S = 256
    img = render_front(mean, tri, uv, tex, img_size=S)
    a = img[..., 3] == 255
    red = a & (img[..., 0] > 200) & (img[..., 1] < 80) & (img[..., 2] < 80)
    blue = a & (img[..., 2] > 200) & (img[..., 0] < 80) & (img[..., 1] < 80)
    lips = a & (img[..., 1] > 150) & (img[..., 0] < 80) & (img[..., 2] < 80)
    assert red.sum() > 50 and blue.sum() > 50 and lips.sum() > 50
    (rx, ry), (bx, by), (lx, ly) = _centroid(red), _centroid(blue), _centroid(lips)
    assert rx < S / 2 < bx
    assert abs((rx + bx) / 2 - S / 2) < 0.05 * S
    assert ry < ly and by < ly, "eyes above the mouth: upright"


@pytest.mark.parametrize("margin", [0.5, 0.95, 1.0])
def test_face_is_centred_on_its_bbox_and_fills_margin(margin):
    # a lopsided mesh: most vertices on the left, so the vertex mean is far from the bbox centre
    left = grid_mesh(-3.0, -1.0, 0.0, 1.0, 0.0, 30, (0.02, 0.02, 0.45, 0.98))
    right = grid_mesh(0.0, -0.5, 1.0, 2.0, 0.0, 1, (0.55, 0.02, 0.98, 0.98))
    v, t, uv = merge(left, right)
    assert abs(v[:, 0].mean() - (v[:, 0].min() + v[:, 0].max()) / 2) > 0.3
    S = 200
    img = render_front(v, t, uv, _flat_texture((200, 150, 120)), img_size=S, frame_fill=margin)
    ys, xs = np.nonzero(img[..., 3] > 0)
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    assert abs(cx - (S - 1) / 2) <= 0.01 * S and abs(cy - (S - 1) / 2) <= 0.01 * S
    extent = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
    assert abs(extent - margin * S) <= 2
    # nothing touches the border at margin < 1
    if margin < 1:
        assert img[0, :, 3].max() == 0 and img[-1, :, 3].max() == 0
        assert img[:, 0, 3].max() == 0 and img[:, -1, 3].max() == 0


def test_transparent_background_has_alpha_zero_corners_and_antialiased_silhouette(bfm):
    mean, tri, uv = bfm.mean_vertices, bfm.triangles, bfm.uv
    img = render_front(mean, tri, uv, _flat_texture((200, 150, 120)), img_size=256)
    assert img.shape == (256, 256, 4) and img.dtype == np.uint8
    for corner in (img[0, 0], img[0, -1], img[-1, 0], img[-1, -1]):
        assert corner[3] == 0
    alpha = img[..., 3]
    partial = (alpha > 0) & (alpha < 255)
    assert partial.sum() > 100, "no intermediate alpha: the silhouette is aliased (seed bug S-29)"
    # the partial pixels sit on the silhouette: each touches a fully transparent or fully opaque one
    import cv2

    near_edge = cv2.dilate((alpha == 0).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (partial & near_edge).sum() / partial.sum() > 0.5
    # straight (un-premultiplied) colour: partially covered pixels keep the surface colour
    np.testing.assert_allclose(img[partial][:, :3].astype(int), np.broadcast_to([200, 150, 120], (partial.sum(), 3)),
                               atol=2)


def test_supersample_one_gives_binary_alpha():
    v, t, uv, tex = _asymmetric_mesh()
    img = render_front(v, t, uv, tex, img_size=64, supersample=1)
    assert set(np.unique(img[..., 3])) <= {0, 255}


def test_white_background_corners_are_white():
    v, t, uv, tex = _asymmetric_mesh()
    img = render_front(v, t, uv, tex, img_size=96, background="white")
    assert img.shape == (96, 96, 3)
    for corner in (img[0, 0], img[0, -1], img[-1, 0], img[-1, -1]):
        assert tuple(corner) == (255, 255, 255)
    # composited, not binarised: some silhouette pixels are between the surface colour and white
    red_edge = (img[..., 0] == 255) & (img[..., 1] > 10) & (img[..., 1] < 245)
    assert red_edge.any()


def test_nearest_surface_wins_and_nothing_is_clipped_below_zero():
    """Green quad in front (larger z) of a red one, both at NEGATIVE z: the green one is seen, and the
    image is identical after shifting z (the seed's PyTorch3D camera dropped z < 0, seed bug S-27)."""
    back = grid_mesh(-1, -1, 1, 1, -5000.0, 2, (0.02, 0.02, 0.45, 0.98))
    front = grid_mesh(-0.5, -0.5, 0.5, 0.5, -4000.0, 2, (0.55, 0.02, 0.98, 0.98))
    tex = np.zeros((64, 64, 3), np.uint8)
    tex[:, :32] = (255, 0, 0)
    tex[:, 32:] = (0, 255, 0)
    for order in ((front, back), (back, front)):
        v, t, uv = merge(*order)
        img = render_front(v, t, uv, tex, img_size=64)
        assert tuple(img[32, 32, :3]) == (0, 255, 0)
        assert tuple(img[3, 3, :3]) == (255, 0, 0) and img[3, 3, 3] == 255
        v2 = v.copy()
        v2[:, 2] += 1e4
        np.testing.assert_array_equal(render_front(v2, t, uv, tex, img_size=64), img)


def test_camera_projection_formula():
    v = np.array([[-2.0, -1.0, 0.0], [2.0, 3.0, 1.0], [0.0, 0.0, 5.0]])
    cam = front_camera(v, 101, 0.5)
    assert (cam.cx, cam.cy) == (0.0, 1.0)
    assert cam.f == pytest.approx(0.5 * 101 / 4)
    p = cam.project(v)
    np.testing.assert_allclose(p[:, 0], [50 - 25.25, 50 + 25.25, 50])
    np.testing.assert_allclose(p[:, 1], [50 + 25.25, 50 - 25.25, 50 + 12.625])
    np.testing.assert_allclose(p[:, 2], v[:, 2])


def test_bad_arguments():
    v, t, uv, tex = _asymmetric_mesh()
    with pytest.raises(UsageError, match="background"):
        render_front(v, t, uv, tex, background="black")
    with pytest.raises(UsageError, match="renderer"):
        render_front(v, t, uv, tex, renderer="opengl")
    with pytest.raises(ValueError, match="texture"):
        render_front(v, t, uv, tex[..., 0])
    with pytest.raises(ValueError, match="uv"):
        render_front(v, t, uv[:-1], tex)
    with pytest.raises(ValueError, match="extent"):
        render_front(np.zeros_like(v), t, uv, tex)


def test_pytorch3d_missing_is_one_clear_error():
    try:
        import pytorch3d  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("pytorch3d is installed")
    v, t, uv, tex = _asymmetric_mesh()
    with pytest.raises(FaceanonError) as info:
        render_front(v, t, uv, tex, renderer="pytorch3d")
    line = info.value.one_line()
    assert "PyTorch3D" in line and "--renderer builtin" in line and "\n" not in line


def test_pytorch3d_matches_builtin(bfm):
    pytest.importorskip("pytorch3d")
    mean, tri, uv, labels = bfm.mean_vertices, bfm.triangles, bfm.uv, bfm.labels
    tex = paint_texture(uv, tri, label_colours(labels), 512)
    a = render_front(mean, tri, uv, tex, img_size=256)
    b = render_front(mean, tri, uv, tex, img_size=256, renderer="pytorch3d")
    assert a.shape == b.shape
    inter = ((a[..., 3] > 127) & (b[..., 3] > 127)).sum()
    union = ((a[..., 3] > 127) | (b[..., 3] > 127)).sum()
    assert inter / union > 0.99
    both = (a[..., 3] == 255) & (b[..., 3] == 255)
    assert np.abs(a[both][:, :3].astype(int) - b[both][:, :3]).mean() < 3


def test_too_large_internal_image_is_refused():
    v, t, uv, tex = _asymmetric_mesh()
    with pytest.raises(UsageError, match="supersample"):
        render_front(v, t, uv, tex, img_size=8192, supersample=4)


def test_the_raster_cache_never_mixes_meshes_or_texture_sizes():
    """The render caches its raster by content (the default --alpha 1 renders one geometry per
    batch): a render after other meshes / texture sizes equals a render from an empty cache."""
    import faceanon.stages.render as R

    v, t, uv, tex = _asymmetric_mesh()
    moved = v.copy()
    moved[:3, 0] -= 0.4  # a different mesh, same topology
    big_tex = np.repeat(np.repeat(tex, 4, axis=0), 4, axis=1)
    R._COVERAGE_CACHE.clear()
    fresh = {name: render_front(m, t, uv, x, img_size=96) for name, m, x in
             [("a", v, tex), ("b", moved, tex), ("c", v, big_tex)]}
    assert not np.array_equal(fresh["a"], fresh["b"])
    for name, m, x in [("b", moved, tex), ("a", v, tex), ("c", v, big_tex), ("a", v, tex)]:
        if name == "c":
            R._COVERAGE_CACHE.clear()
        np.testing.assert_array_equal(render_front(m, t, uv, x, img_size=96), fresh[name])
    # a texture of other colours on the cached geometry: the colours follow the texture
    green = np.zeros_like(tex)
    green[..., 1] = 200
    img = render_front(v, t, uv, green, img_size=96)
    np.testing.assert_array_equal(img[..., 3], fresh["a"][..., 3])
    assert (img[img[..., 3] == 255][:, :3] == [0, 200, 0]).all()
    assert len(R._COVERAGE_CACHE) <= 2
