"""segment stage: eyes/lips removal on the real 3DDFA-V3 reference outputs (edo, sis) and synthetic maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceanon.stages.segment import (
    EYE_CENTROID_TO_IOD,
    SegmentFace,
    estimate_inter_ocular,
    feather_alpha,
    removed_region,
    segment_image,
)

REMOVED = (1, 2, 6, 7)


@pytest.fixture(scope="module", params=["edo", "sis"])
def ref(request, reference_dir):
    from faceanon.io.images import load_image

    stem = request.param
    rgb = load_image(reference_dir / f"{stem}.jpg").rgb
    labels = np.load(reference_dir / f"{stem}_projections.npz")["seg_visible_labels_full"]
    assert labels.shape == rgb.shape[:2]
    return stem, rgb, labels


def _distance_to(mask: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def test_every_eye_and_lip_pixel_is_fully_transparent(ref):
    _, rgb, labels = ref
    rgba, removed = segment_image(rgb, [SegmentFace(labels)])
    assert rgba.shape == rgb.shape[:2] + (4,) and rgba.dtype == np.uint8
    core = np.isin(labels, REMOVED)
    assert core.sum() > 500
    assert (rgba[..., 3][core] == 0).all()
    # seed bug S-15 (docs/seed_compatibility.md): alpha is exactly 0 on EVERY removed pixel, not only deep inside
    assert (rgba[..., 3][removed] == 0).all()
    # and nothing outside the removed region is fully transparent
    assert (rgba[..., 3][~removed] > 0).all()


def test_keep_mouth_keeps_the_lips(ref):
    _, rgb, labels = ref
    rgba, removed = segment_image(rgb, [SegmentFace(labels)], keep_mouth=True)
    lips = np.isin(labels, (6, 7))
    eyes = np.isin(labels, (1, 2))
    assert (rgba[..., 3][lips] == 255).all()
    assert (rgba[..., :3][lips] == rgb[lips]).all()
    assert (rgba[..., 3][eyes] == 0).all()
    assert not removed[lips].any()


@pytest.mark.parametrize("margin,feather", [(0.15, 3.0), (0.3, 8.0), (0.0, 0.0)])
def test_pixels_far_from_the_removed_labels_are_untouched(ref, margin, feather):
    _, rgb, labels = ref
    iod = estimate_inter_ocular(labels)
    rgba, _ = segment_image(rgb, [SegmentFace(labels)], margin=margin, feather_px=feather)
    d = _distance_to(np.isin(labels, REMOVED))
    far = d > margin * iod + feather + 2
    assert far.mean() > 0.8
    assert (rgba[..., :3][far] == rgb[far]).all()
    assert (rgba[..., 3][far] == 255).all()


def test_rgb_outside_the_removed_region_is_bit_exact_even_in_the_feather_ring(ref):
    _, rgb, labels = ref
    rgba, removed = segment_image(rgb, [SegmentFace(labels)], feather_px=6.0)
    ring = ~removed & (rgba[..., 3] < 255)
    assert ring.sum() > 100
    assert (rgba[..., :3][~removed] == rgb[~removed]).all()


def test_removed_pixels_are_inpainted(ref):
    _, rgb, labels = ref
    rgba, removed = segment_image(rgb, [SegmentFace(labels)])
    core = np.isin(labels, REMOVED)
    before = rgb[core].astype(int)
    after = rgba[..., :3][core].astype(int)
    assert np.abs(before - after).mean() > 5.0
    assert (before == after).all(axis=1).mean() < 0.05
    # the fill is smooth (Telea diffuses the border): far less texture than the original eyes/mouth
    grad_before = np.abs(np.diff(rgb.astype(int), axis=1))[core[:, 1:]].mean()
    grad_after = np.abs(np.diff(rgba[..., :3].astype(int), axis=1))[core[:, 1:]].mean()
    assert grad_after < grad_before


def test_feather_ramps_outward_over_feather_px(ref):
    _, rgb, labels = ref
    feather = 4.0
    rgba, removed = segment_image(rgb, [SegmentFace(labels)], feather_px=feather)
    alpha = rgba[..., 3].astype(int)
    d = _distance_to(removed)
    for lo, hi in [(0.5, 1.5), (1.5, 2.5), (2.5, 3.5), (3.5, 4.5)]:
        band = (d > lo) & (d <= hi)
        assert band.any()
    mean_at = [alpha[(d > k - 0.5) & (d <= k + 0.5)].mean() for k in (1, 2, 3, 4)]
    assert all(0 < m < 255 for m in mean_at)
    assert mean_at == sorted(mean_at) and len(set(mean_at)) == 4
    assert (alpha[d >= feather + 1] == 255).all()


def test_feather_zero_gives_a_binary_alpha(ref):
    _, rgb, labels = ref
    rgba, removed = segment_image(rgb, [SegmentFace(labels)], feather_px=0.0)
    assert set(np.unique(rgba[..., 3]).tolist()) == {0, 255}
    assert ((rgba[..., 3] == 0) == removed).all()


def test_margin_zero_removes_exactly_the_labels(ref):
    _, rgb, labels = ref
    _, removed = segment_image(rgb, [SegmentFace(labels)], margin=0.0)
    assert (removed == np.isin(labels, REMOVED)).all()


def test_margin_is_a_fraction_of_the_inter_ocular_distance(ref):
    _, rgb, labels = ref
    iod = estimate_inter_ocular(labels)
    _, removed = segment_image(rgb, [SegmentFace(labels, inter_ocular=iod)], margin=0.2, feather_px=0)
    d = _distance_to(np.isin(labels, REMOVED))
    r = 0.2 * iod
    assert removed[d <= r - 1].all()
    assert not removed[d > r + 1].any()


def test_inter_ocular_estimate_matches_the_eye_extent(ref):
    stem, _, labels = ref
    eyes = np.isin(labels, (1, 2))
    cols = np.nonzero(eyes.any(axis=0))[0]
    outer = cols[-1] - cols[0]  # outer corner to outer corner, roughly
    iod = estimate_inter_ocular(labels)
    assert abs(iod - outer) < 0.1 * outer, (stem, iod, outer)


def test_inter_ocular_prefers_landmarks_and_falls_back_to_the_face_width():
    labels = np.zeros((200, 300), np.uint8)
    labels[50:150, 50:250] = 8
    lm = np.zeros((68, 2), np.float32)
    lm[36] = (100, 80)
    lm[45] = (190, 80)
    assert estimate_inter_ocular(labels, lm) == pytest.approx(90.0)
    # no eye labels -> fraction of the face width (200 px)
    assert 80 < estimate_inter_ocular(labels) < 150
    labels[90:100, 90:110] = 1
    labels[90:100, 170:190] = 2
    assert estimate_inter_ocular(labels) == pytest.approx(80.0 / EYE_CENTROID_TO_IOD, rel=1e-6)
    assert estimate_inter_ocular(np.zeros((10, 10), np.uint8)) == 0.0


def test_small_and_large_faces_get_the_same_relative_coverage(reference_dir):
    from faceanon.io.images import load_image

    rgb = load_image(reference_dir / "edo.jpg").rgb
    labels = np.load(reference_dir / "edo_projections.npz")["seg_visible_labels_full"]
    h, w = labels.shape
    small_rgb = cv2.resize(rgb, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    small_labels = cv2.resize(labels, (w // 4, h // 4), interpolation=cv2.INTER_NEAREST)
    iod_big = estimate_inter_ocular(labels)
    iod_small = estimate_inter_ocular(small_labels)
    assert iod_small == pytest.approx(iod_big / 4, rel=0.05)
    _, big = segment_image(rgb, [SegmentFace(labels)], margin=0.15)
    _, small = segment_image(small_rgb, [SegmentFace(small_labels)], margin=0.15)
    ratio = (small.sum() * 16) / big.sum()
    assert ratio == pytest.approx(1.0, abs=0.08)
    # a margin in PIXELS (the seed's) would not scale: the same absolute radius on the small face
    # covers relatively much more
    _, small_px = segment_image(small_rgb, [SegmentFace(small_labels, inter_ocular=iod_big)], margin=0.15)
    assert (small_px.sum() * 16) / big.sum() > 1.5


def test_every_face_of_the_image_is_segmented(ref):
    _, rgb, labels = ref
    h, w = labels.shape
    # a second, smaller face: the same labels shrunk by 2 into the top-left corner
    second = np.zeros_like(labels)
    second[: h // 2, : w // 2] = cv2.resize(labels, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
    rgba, removed = segment_image(rgb, [SegmentFace(labels), SegmentFace(second)])
    for lab in (labels, second):
        assert (rgba[..., 3][np.isin(lab, REMOVED)] == 0).all()
    one, _ = segment_image(rgb, [SegmentFace(labels)])
    assert removed.sum() > (one[..., 3] == 0).sum()


def test_no_faces_or_no_removed_label_leaves_the_image_untouched():
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    rgba, removed = segment_image(rgb, [])
    assert (rgba[..., :3] == rgb).all() and (rgba[..., 3] == 255).all() and not removed.any()
    labels = np.full((40, 50), 8, np.uint8)
    rgba, removed = segment_image(rgb, [SegmentFace(labels, 20.0)])
    assert (rgba[..., :3] == rgb).all() and (rgba[..., 3] == 255).all() and not removed.any()


def test_removed_region_and_feather_alpha_building_blocks():
    labels = np.zeros((101, 101), np.uint8)
    labels[50, 50] = 1
    r = removed_region(labels, 100.0, margin=0.1)  # radius 10 px disc
    yy, xx = np.mgrid[:101, :101]
    assert (r == (np.hypot(yy - 50, xx - 50) <= 10)).all()
    alpha = feather_alpha(r, 3.0)
    assert alpha[50, 50] == 0 and alpha[50, 60] == 0
    assert 0 < alpha[50, 61] < alpha[50, 62] < alpha[50, 63] < 255
    assert alpha[50, 64] == 255


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rgb": np.zeros((10, 10), np.uint8)}, "rgb"),
        ({"rgb": np.zeros((10, 10, 3), np.float32)}, "rgb"),
        ({"labels": np.zeros((9, 10), np.uint8)}, "labels"),
        ({"labels": np.zeros((10, 10), np.int32)}, "uint8"),
        ({"margin": -0.1}, "margin"),
        ({"feather_px": -1.0}, "feather_px"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    rgb = kwargs.pop("rgb", np.zeros((10, 10, 3), np.uint8))
    labels = kwargs.pop("labels", np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match=match):
        segment_image(rgb, [SegmentFace(labels, 10.0)], **kwargs)


@pytest.mark.parametrize("scale", [1, 2], ids=["direct", "two-scale"])
def test_no_original_eye_or_mouth_pixel_leaks_into_the_fill(reference_dir, scale):
    """Paint the eyes/lips pure green: nothing green may survive in the fill (Telea reads only
    unmasked pixels; the two-scale path for large faces must not average masked pixels in)."""
    from faceanon.io.images import load_image

    rgb = load_image(reference_dir / "sis.jpg").rgb
    labels = np.load(reference_dir / "sis_projections.npz")["seg_visible_labels_full"]
    if scale != 1:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        labels = cv2.resize(labels, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    iod = estimate_inter_ocular(labels)
    assert (iod > 480) == (scale == 2)  # the second case takes the large-face path
    face = SegmentFace(labels, iod)
    # everything the margin removes is painted green, so any leak would show
    _, removed = segment_image(rgb, [face])
    painted = rgb.copy()
    painted[removed] = (0, 255, 0)
    rgba, removed2 = segment_image(painted, [face])
    assert (removed2 == removed).all()
    fill = rgba[..., :3][removed].astype(int)
    greenish = (fill[:, 1] - np.maximum(fill[:, 0], fill[:, 2])) > 40
    assert greenish.mean() == 0.0
    # the fill is the same as without the paint: it never read a removed pixel
    ref, _ = segment_image(rgb, [face])
    assert (rgba == ref).all()
