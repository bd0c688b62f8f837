"""DDFAv3 end to end on the synthetic asset set and a real photo (random / designed weights)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ddfa_v3 import align
from ddfa_v3.errors import ImageError, NoFaceError
from ddfa_v3.model import DDFAv3, FaceBox, pose_from_angles, visible_part_masks
from ddfa_v3.testing import ASSET_FILES, synthetic_layout106, write_synthetic_assets
from faceanon.models.ddfa_v3_backend import to_detection, to_facefit
from faceanon.types import Detection, FaceFit

try:
    from faceanon.raster import rasterize as project_rasterize
except ImportError:  # pragma: no cover - the compiled rasterizer is not built
    project_rasterize = None


class _Raster:
    def __init__(self, tri_id, bary, depth):
        self.tri_id, self.bary, self.depth = tri_id, bary, depth


def numpy_rasterize(vertices, triangles, height, width, cull=None):
    """Tiny stand-in with the project signature: pixel centres at integers, larger z wins."""
    tri_id = np.full((height, width), -1, np.int32)
    bary = np.zeros((height, width, 3), np.float32)
    depth = np.full((height, width), -np.inf, np.float32)
    v = vertices.astype(np.float64)
    for t, (a, b, c) in enumerate(triangles):
        p0, p1, p2 = v[a], v[b], v[c]
        x0, x1 = int(np.ceil(min(p0[0], p1[0], p2[0]))), int(np.floor(max(p0[0], p1[0], p2[0])))
        y0, y1 = int(np.ceil(min(p0[1], p1[1], p2[1]))), int(np.floor(max(p0[1], p1[1], p2[1])))
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1)
        if x0 > x1 or y0 > y1:
            continue
        det = (p1[0] - p0[0]) * (p2[1] - p0[1]) - (p2[0] - p0[0]) * (p1[1] - p0[1])
        if det == 0:
            continue
        yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        w1 = ((xx - p0[0]) * (p2[1] - p0[1]) - (p2[0] - p0[0]) * (yy - p0[1])) / det
        w2 = ((p1[0] - p0[0]) * (yy - p0[1]) - (xx - p0[0]) * (p1[1] - p0[1])) / det
        w0 = 1 - w1 - w2
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        z = w0 * p0[2] + w1 * p1[2] + w2 * p2[2]
        win = inside & (z > depth[y0:y1 + 1, x0:x1 + 1])
        tri_id[y0:y1 + 1, x0:x1 + 1][win] = t
        depth[y0:y1 + 1, x0:x1 + 1][win] = z[win]
        bary[y0:y1 + 1, x0:x1 + 1][win] = np.stack([w0, w1, w2], -1)[win]
    return _Raster(tri_id, bary, depth)


RASTERIZE = project_rasterize or numpy_rasterize


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return write_synthetic_assets(tmp_path_factory.mktemp("ddfa_v3_assets"))


@pytest.fixture(scope="module")
def model(assets):
    return DDFAv3(**assets)


@pytest.fixture(scope="module")
def photo(reference_dir):
    return np.asarray(Image.open(reference_dir / "edo.jpg").convert("RGB"))


@pytest.fixture(scope="module")
def detections(model, photo):
    return model.detect(photo)


@pytest.fixture(scope="module")
def result(model, photo, detections):
    return model.fit(photo, detections[0], RASTERIZE)


def test_asset_files(assets):
    assert {k: p.name for k, p in assets.items()} == ASSET_FILES
    assert all(p.is_file() for p in assets.values())


def test_detect_finds_exactly_one_centred_face(detections, photo):
    assert len(detections) == 1
    d = detections[0]
    assert isinstance(d, FaceBox) and d.box.dtype == np.float32 and d.score > 0.7
    h, w = photo.shape[:2]
    cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
    assert abs(cx - w / 2) < 0.1 * w and abs(cy - h / 2) < 0.1 * h
    assert 0.3 * w < d.box[2] - d.box[0] < 0.8 * w
    assert d.landmarks5[0, 0] < d.landmarks5[1, 0]  # image-left eye first


def test_fit_outputs(result, model, photo):
    h, w = photo.shape[:2]
    n, m = model.face_model.n_vertices, model.face_model.n_triangles
    spec = {"vertices": ((n, 3), np.float32), "triangles": ((m, 3), np.int32), "uv": ((n, 2), np.float32),
            "vertex_labels": ((n,), np.uint8), "landmarks68": ((68, 2), np.float32), "pose": ((3,), np.float32),
            "model_vertices": ((n, 3), np.float32), "mean_vertices": ((n, 3), np.float32),
            "trans_params": ((5,), np.float32), "v2d_full": ((n, 2), np.float32),
            "seg_visible_labels_full": ((h, w), np.uint8)}
    for k, (shape, dtype) in spec.items():
        assert result[k].shape == shape and result[k].dtype == dtype, k
    assert np.all(np.isfinite(result["vertices"]))
    # xy of the vertices are v2d_full, computed the seed's way with the float32 trans_params
    v2d_full = align.back_resize_ldms(align.v2d_to_crop_px(result["v2d_crop"]), result["trans_params"])
    np.testing.assert_array_equal(result["v2d_full"], v2d_full)
    np.testing.assert_array_equal(result["vertices"][:, :2], v2d_full)
    np.testing.assert_array_equal(result["landmarks68"], v2d_full[model.face_model.ldm68])
    np.testing.assert_array_equal(result["trans_params"][:2], [w, h])
    # the label map is the 224-crop map pasted back with PIL NEAREST
    np.testing.assert_array_equal(result["seg_visible_labels_full"],
                                  align.back_resize_labels(result["seg_visible_labels_crop"], result["trans_params"]))
    counts = np.bincount(result["seg_visible_labels_full"].ravel(), minlength=9)
    assert counts.shape == (9,) and np.all(counts[[1, 2, 5, 6, 7, 8]] > 0)
    np.testing.assert_allclose(result["pose"], pose_from_angles(result["coeffs"][224:227]))


def test_fit_geometry_conventions(result, model):
    v = result["vertices"].astype(np.float64)
    t = result["triangles"]
    vis = result["visible"]
    front = vis[t].all(axis=1)
    area = ((v[t[:, 1], 0] - v[t[:, 0], 0]) * (v[t[:, 2], 1] - v[t[:, 0], 1])
            - (v[t[:, 2], 0] - v[t[:, 0], 0]) * (v[t[:, 1], 1] - v[t[:, 0], 1]))
    assert front.sum() > 0.5 * len(t)
    assert (area[front] < 0).mean() > 0.98  # front-facing = negative image-space signed area
    # z larger = nearer: the nose tip (max model z) is nearer than the face outline
    mv = result["model_vertices"]
    nose = np.argmax(mv[:, 2])
    assert v[nose, 2] > np.percentile(v[:, 2], 95)
    # y down: the model's top (max model y) is near the top of the image
    assert v[np.argmax(mv[:, 1]), 1] < v[np.argmin(mv[:, 1]), 1]
    # per-vertex labels: later parts win (skin ids shared with the nose get 8)
    lab = np.zeros(model.face_model.n_vertices, np.uint8)
    for i, idx in enumerate(model.face_model.annotation):
        lab[idx] = i + 1
    np.testing.assert_array_equal(result["vertex_labels"], lab)
    assert len(set(model.face_model.annotation[4]) & set(model.face_model.annotation[7])) > 0
    assert np.all(result["vertex_labels"][model.face_model.annotation[7]] == 8)


def test_landmarks_fixed_point_of_the_two_pass_crop(result, detections):
    """The synthetic landmark net draws a fixed layout; pass 2 crops the same square again."""
    lm = result["landmarks106_input"]
    box = detections[0].box
    lay = synthetic_layout106()  # unit box, bbox exactly [0, 1]^2
    span = lm.max(0) - lm.min(0)
    # the layout fills 1/1.35 of a square of side 1.35 * (x2 - x1 + 1): its span is the box width
    assert abs(span[0] - (box[2] - box[0] + 1)) / span[0] < 0.05
    np.testing.assert_allclose(span[1] / span[0], 1.0, atol=0.02)
    # and its shape is the layout's, up to that scale and a shift
    np.testing.assert_allclose((lm - lm.min(0)) / span[0], lay - lay.min(0), atol=0.02)


def test_bug9_fix_is_a_one_row_shift(result, model):
    """With seed rows (224 - y) the crop label map is the fixed one (223 - y) moved one row down."""
    fm = model.face_model
    args = (result["v2d_crop"], result["world_vertices"][:, 2], result["normals"], model.triangles, fm.annotation,
            RASTERIZE)
    fixed, vis_fixed = visible_part_masks(*args)
    seed, vis_seed = visible_part_masks(*args, seed_rows=True)
    np.testing.assert_array_equal(fixed, result["seg_visible_crop"])
    diff = (seed[:, 1:] != fixed[:, :-1]).mean()
    assert diff < 1e-3
    assert seed.sum() > 0


def test_facefit_wrapper(result, detections):
    det = to_detection(detections[0])
    assert isinstance(det, Detection) and np.array_equal(det.box, detections[0].box)
    ff = to_facefit(result, det)
    assert isinstance(ff, FaceFit) and ff.backend == "3ddfa-v3" and ff.detection is det
    np.testing.assert_array_equal(ff.v2d, result["v2d_full"])
    assert "seg_visible_labels_full" in ff.extras and "vertices" not in ff.extras


def test_no_face_raises(model, photo, monkeypatch):
    monkeypatch.setattr(model.detector, "detect", lambda rgb: [])
    with pytest.raises(NoFaceError):
        model.fit_all(photo, RASTERIZE)


def test_bad_image_argument(model):
    with pytest.raises(ImageError, match="rgb"):
        model.detect(np.zeros((10, 10), np.float32))
