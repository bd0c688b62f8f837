"""stages/features and models/topology: identity-free eyes, lips and brows; the closed mouth; and the
property that matters most - nothing of the removed eyes, lips and brows reaches the anonymized photo."""

from __future__ import annotations

import numpy as np
import pytest

from faceanon.models.topology import boundary_loops, cap_inner_holes
from faceanon.stages.features import brow_colour, paint_features, skin_chroma, with_chroma
from faceanon.types import BROW_LABELS, EYE_LABELS, LIP_LABELS, removal_parts


# --------------------------------------------------------------------------------------- topology
def ring_mesh(n_out=24, n_in=12):
    """A flat annulus (outer radius 10, inner 3) in the x-y plane, front faces toward +z."""
    outer = [(10 * np.cos(a), 10 * np.sin(a), 0.0) for a in np.linspace(0, 2 * np.pi, n_out, endpoint=False)]
    inner = [(3 * np.cos(a), 1.5 * np.sin(a), 0.0) for a in np.linspace(0, 2 * np.pi, n_in, endpoint=False)]
    v = np.array(outer + inner, np.float64)
    from scipy.spatial import Delaunay

    tri = Delaunay(v[:, :2]).simplices
    c = v[tri].mean(axis=1)
    keep = ((c[:, 0] / 3) ** 2 + (c[:, 1] / 1.5) ** 2) > 1.0  # drop the triangles inside the hole
    tri = tri[keep]
    area = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])[:, 2]
    tri[area < 0] = tri[area < 0][:, ::-1]  # all counter-clockwise seen from +z
    return v, tri


def test_boundary_loops_and_the_cap():
    v, tri = ring_mesh()
    loops = boundary_loops(tri)
    assert sorted(len(loop) for loop in loops) == [12, 24]
    closed = cap_inner_holes(v, tri)
    assert np.array_equal(closed[: len(tri)], tri)  # the mesh's own triangles first, unchanged
    assert [len(loop) for loop in boundary_loops(closed)] == [24]  # only the outer boundary left
    cap = closed[len(tri):]
    assert len(cap) == 12 - 2 and set(np.unique(cap)) <= set(range(24, 36))  # no new vertex
    nz = np.cross(v[cap[:, 1]] - v[cap[:, 0]], v[cap[:, 2]] - v[cap[:, 0]])[:, 2]
    assert (nz > 0).all()  # wound like the mesh around it
    # the cap covers the hole: total area = the ellipse polygon's area
    poly = v[24:36, :2]
    shoelace = 0.5 * abs(np.dot(poly[:, 0], np.roll(poly[:, 1], 1)) - np.dot(poly[:, 1], np.roll(poly[:, 0], 1)))
    assert nz.sum() / 2 == pytest.approx(shoelace, rel=1e-6)


def test_a_mesh_without_holes_is_returned_as_is():
    v, tri = ring_mesh()
    closed = cap_inner_holes(v, tri)
    assert np.array_equal(cap_inner_holes(v, closed), closed)


# ----------------------------------------------------------------------------------- parts and masks
def test_removal_parts():
    assert removal_parts() == EYE_LABELS + LIP_LABELS
    assert removal_parts(keep_mouth=True) == EYE_LABELS
    assert set(removal_parts(brows=True)) == set(EYE_LABELS + LIP_LABELS + BROW_LABELS)


def test_lips_of_a_greyscale_photo_are_darkened_not_tinted():
    grey = np.full((10, 10, 3), 150, np.uint8)
    labels = np.full((10, 10), 8, np.uint8)
    assert skin_chroma(grey, labels) == 0.0
    skin = np.zeros_like(grey)
    skin[:] = (210, 160, 140)
    assert skin_chroma(skin, labels) == 1.0
    lip = np.array([[0.8, 0.56, 0.56]], np.float32)
    flat = with_chroma(lip, 0.0)
    assert np.allclose(flat, flat.mean()) and np.isclose(flat.mean(), lip.mean())
    assert np.array_equal(with_chroma(lip, 1.0), lip)


def test_brow_colour_is_the_darker_half_of_the_brow_pixels():
    rgb = np.full((20, 20, 3), 200, np.uint8)
    labels = np.zeros((20, 20), np.uint8)
    labels[5:9, 2:18] = 3
    rgb[5:7, 2:18] = (40, 30, 20)  # hair over the upper half of the brow region
    assert np.allclose(brow_colour(rgb, labels), (40, 30, 20))
    assert brow_colour(rgb, np.zeros_like(labels)) is None


# ------------------------------------------------------------------------- with the real lite model
@pytest.fixture(scope="module")
def lite(mirror_dir, tmp_path_factory):
    from faceanon.models.bfm import BFMSources, load_bfm

    return load_bfm(BFMSources.from_root(mirror_dir), tmp_path_factory.mktemp("bfm"))


@pytest.fixture(scope="module")
def layers(lite):
    from faceanon.stages.features import feature_layers

    return feature_layers(lite.mean_vertices, lite.triangles, lite.uv, lite.kp68, 512, lite.labels)


def test_the_drawing_sits_on_the_mean_faces_eyes_lips_and_brows(lite, layers):
    """The lash lines lie between the eye corners, the lip tint on the lips, the brows above the eyes."""
    from faceanon.stages.texture import uv_to_pixels

    y0, y1, x0, x1 = layers.window
    px = uv_to_pixels(lite.uv[lite.kp68], 512)[:, :2] - [x0, y0]

    def at(layer, p):
        return layer[int(round(p[1])), int(round(p[0]))]

    for a, b in ((36, 39), (42, 45)):
        mid = (px[a] + px[b]) / 2 + [0, 0.15 * abs(px[b][0] - px[a][0]) * 0.3]
        assert at(layers.eyes, mid) < 0.6  # dark lash line inside the eye
    lip = (px[51] + px[62]) / 2
    r, g, b = at(layers.mouth, lip)
    assert r < 1 and g < r and b < r  # redder and darker than the skin
    assert at(layers.brows, px[19] + [0, 0.02 * 512]) > 0.3
    cheek = px[2] + (px[30] - px[2]) * 0.3
    assert at(layers.eyes, cheek) > 0.97 and at(layers.brows, cheek) < 0.02


def test_paint_features_changes_only_what_it_draws(layers):
    rng = np.random.default_rng(0)
    tex = rng.integers(60, 220, (512, 512, 3)).astype(np.uint8)
    painted = paint_features(tex, layers, brow_rgb=np.array([60, 40, 30]))
    y0, y1, x0, x1 = layers.window
    outside = np.ones((512, 512), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(painted[outside], tex[outside])
    assert (painted != tex).any()
    # keep_mouth leaves the lips as baked; no brow colour leaves the brows as baked
    no_mouth = paint_features(tex, layers, keep_mouth=True)
    lips = (np.abs(layers.mouth - 1.0) > 0.05).any(axis=2) & (np.abs(layers.eyes - 1.0) < 1e-3) \
        & (np.abs(layers.relief[..., 0] - 1.0) < 1e-3)
    assert lips.any() and np.array_equal(no_mouth[y0:y1, x0:x1][lips], tex[y0:y1, x0:x1][lips])
    # the drawing depends on the texture and the mean face only: a uniform texture gives the same
    # result wherever it came from (no hidden state)
    flat = np.full_like(tex, 150)
    assert np.array_equal(paint_features(flat, layers), paint_features(flat.copy(), layers))


def test_removed_pixels_never_reach_the_anonymized_photo(lite, mirror_dir, photos_dir):
    """The oracle for "the filled eyes and lips contain no original pixel": with the fit held fixed,
    replacing every pixel of the removed region (eyes, lips, brows and their margins) by noise must not
    change one pixel of the composite - not even through a statistic such as the grain strength."""
    from faceanon.io.images import load_image
    from faceanon.models.bfm import load_param_stats
    from faceanon.models.centerface import CenterFace
    from faceanon.models.labels import visible_label_map
    from faceanon.models.lite import LiteBackend
    from faceanon.models.mb05 import load_mb05
    from faceanon.stages.anonymize import FeatureSpec, anonymize_face
    from faceanon.stages.composite import CompositeFace, FaceFeatures, composite_image
    from faceanon.stages.segment import FaceMesh, SegmentFace, segment_image

    rgb = load_image(photos_dir / "kim3.jpg").rgb
    mean, std = load_param_stats(mirror_dir / "3ddfa_v2/param_mean_std_62d_120x120.pkl")
    backend = LiteBackend(load_mb05(mirror_dir / "3ddfa_v2/mb05_120x120.pth"), mean, std, lite)
    det = CenterFace(mirror_dir / "detectors/centerface.onnx").detect(rgb)[0]
    fit = backend.fit(rgb, det)
    labels = visible_label_map(fit, *rgb.shape[:2])
    mesh = FaceMesh(fit.vertices, fit.triangles, fit.vertex_labels)

    def anonymized(photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        face = SegmentFace(labels, fit.inter_ocular, mesh=mesh, box=det.box)
        rgba, removed = segment_image(photo, [face], brows=True, grain=True, margin=0.2)
        seg = np.ascontiguousarray(rgba[:, :, :3])
        spec = FeatureSpec(fit.landmark_ids, brows=True, brow_rgb=np.array([90.0, 70.0, 50.0]),
                           vertex_labels=fit.vertex_labels)
        a = anonymize_face(fit.vertices, fit.triangles, fit.uv, seg, fit.mean_vertices, tex_size=512, features=spec)
        feats = FaceFeatures(a.feature_layers, brow_rgb=a.brow_rgb)
        comp = composite_image(seg, [CompositeFace(a.posed_image_vertices, fit.triangles, fit.uv, a.texture,
                                                   source_vertices=fit.vertices, features=feats)])
        return comp, removed

    first, removed = anonymized(rgb)
    assert removed.sum() > 1000
    noisy = rgb.copy()
    noisy[removed] = np.random.default_rng(1).integers(0, 256, (int(removed.sum()), 3), dtype=np.uint8)
    second, removed2 = anonymized(noisy)
    assert np.array_equal(removed, removed2)
    assert np.array_equal(first, second)
