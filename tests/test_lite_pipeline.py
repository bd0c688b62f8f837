"""The lite pipeline end to end on real assets: CenterFace detection, the two-pass mb05 fit, the
FaceFit conventions and the visible label map, against the reference numbers of docs/lite_model.md, section 6."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceanon.models.bfm import BFMSources
from faceanon.models.centerface import CenterFace
from faceanon.models.lite import LiteBackend, crop_to_image, roi_from_box
from faceanon.types import Detection

pytestmark = pytest.mark.assets

_SHARED = Path(os.environ.get("FACEANON_SHARED", Path(__file__).resolve().parents[2] / "shared"))
PHOTOS = sorted(p.name for p in (_SHARED / "fixtures" / "photos").glob("*.jpg"))  # for parametrize


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def read_pts(path: Path) -> np.ndarray:
    """iBUG .pts (1-based x y) -> (68, 2) image px with pixel centres at integer coordinates."""
    body = path.read_text().split("{")[1].split("}")[0].split()
    return np.asarray(body, np.float64).reshape(-1, 2) - 1.0


@pytest.fixture(scope="module")
def detector(mirror_dir) -> CenterFace:
    return CenterFace(mirror_dir / "detectors/centerface.onnx")


@pytest.fixture(scope="module")
def spec_detector(mirror_dir) -> CenterFace:
    """The single-pass detection the reference numbers (docs/lite_model.md, section 6) were made with (no coarse pass:
    it changes the box of a face above CenterFace.LARGE_FACE px, e.g. eos_image_0010's)."""
    return CenterFace(mirror_dir / "detectors/centerface.onnx", coarse_side=None)


@pytest.fixture(scope="module")
def backend(mirror_dir, tmp_path_factory) -> LiteBackend:
    return LiteBackend.from_files(mirror_dir / "3ddfa_v2/mb05_120x120.pth",
                                  mirror_dir / "3ddfa_v2/param_mean_std_62d_120x120.pkl",
                                  BFMSources.from_root(mirror_dir), tmp_path_factory.mktemp("bfm"))


@pytest.fixture(scope="module")
def ref(spec_data_dir) -> dict:
    return json.loads((spec_data_dir / "lite_reference_alison1.json").read_text())


@pytest.fixture(scope="module")
def fixtures_ref(spec_data_dir) -> dict:
    return json.loads((spec_data_dir / "lite_reference_fixtures.json").read_text())


@pytest.fixture(scope="module")
def alison(photos_dir) -> np.ndarray:
    return read_rgb(photos_dir / "alison1.jpg")


# ------------------------------------------------------------------------------------ CenterFace


def test_centerface_alison_matches_spec(detector, alison):
    dets = detector.detect(alison)
    assert len(dets) == 1
    d = dets[0]
    np.testing.assert_allclose(d.box, [144.27, 156.20, 355.40, 422.38], atol=0.5)
    assert d.score == pytest.approx(0.87, abs=0.01)
    np.testing.assert_allclose(d.landmarks5, ALISON_LM5, atol=0.5)
    assert d.box.dtype == np.float32 and d.landmarks5.shape == (5, 2)


@pytest.mark.parametrize("name", PHOTOS)
def test_each_fixture_photo_has_exactly_one_face(detector, photos_dir, fixtures_ref, name):
    dets = detector.detect(read_rgb(photos_dir / name))
    assert len(dets) == 1
    np.testing.assert_allclose(dets[0].box, fixtures_ref[name]["cf"]["box"][:4], atol=0.5)


def test_two_faces_side_by_side_and_filters(detector, photos_dir, mirror_dir):
    a, b = read_rgb(photos_dir / "alison1.jpg"), read_rgb(photos_dir / "kim3.jpg")
    h = max(a.shape[0], b.shape[0])
    canvas = np.full((h, a.shape[1] + b.shape[1], 3), 128, np.uint8)
    canvas[:a.shape[0], :a.shape[1]] = a
    canvas[:b.shape[0], a.shape[1]:] = b
    dets = detector.detect(canvas)
    assert len(dets) == 2
    assert dets[0].score >= dets[1].score
    centres = sorted(float(d.box[[0, 2]].mean()) for d in dets)
    assert centres[0] < a.shape[1] < centres[1]
    onnx = mirror_dir / "detectors/centerface.onnx"
    assert len(CenterFace(onnx, max_faces=1).detect(canvas)) == 1
    assert CenterFace(onnx, min_face_size=10_000).detect(canvas) == []
    # the faces the size filter drops are reported, with their sizes
    big_only = CenterFace(onnx, min_face_size=(dets[0].size + dets[1].size) / 2)
    kept, small = big_only.detect_with_rejected(canvas)
    assert len(kept) == 1 and len(small) == 1 and small[0].size < kept[0].size
    kept, small = CenterFace(onnx, min_face_size=10_000).detect_with_rejected(canvas)
    assert kept == [] and sorted(d.size for d in small) == sorted(d.size for d in dets)
    kept, small = CenterFace(onnx, max_faces=1).detect_with_rejected(canvas)
    assert len(kept) == 1 and small == []  # max_faces drops are not "too small"


def test_no_face_message_says_when_faces_were_only_too_small(detector, photos_dir, mirror_dir):
    from faceanon.errors import NoFaceError
    from faceanon.stages.reconstruct import fit_faces
    from faceanon.types import ImageRecord

    rgb = read_rgb(photos_dir / "alison1.jpg")
    size = detector.detect(rgb)[0].size
    image = ImageRecord(path=photos_dir / "alison1.jpg", rgb=rgb)
    strict = CenterFace(mirror_dir / "detectors/centerface.onnx", min_face_size=size + 50)
    with pytest.raises(NoFaceError) as ei:
        fit_faces(image, strict, backend=None)
    assert f"1 face smaller than --min-face-size {size + 50:g} px ignored (largest {size:.0f} px)" in ei.value.message
    assert f"--min-face-size {int(size) - 1}" in ei.value.hint
    grey = ImageRecord(path=photos_dir / "grey.png", rgb=np.full((300, 300, 3), 128, np.uint8))
    with pytest.raises(NoFaceError) as ei:
        fit_faces(grey, strict, backend=None)
    assert ei.value.message == "no face found" and "smaller" not in ei.value.hint


def test_flat_grey_image_has_no_face(detector):
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert detector.detect(np.full((1, 1, 3), 128, np.uint8)) == []


def test_one_net_per_input_size(detector, photos_dir, alison):
    first = detector.detect(alison)[0]
    detector.detect(read_rgb(photos_dir / "kim3.jpg"))  # another size in between
    again = detector.detect(alison)[0]
    np.testing.assert_array_equal(first.box, again.box)


def test_large_image_is_detected_on_a_downscaled_copy(mirror_dir, alison):
    big = cv2.resize(alison, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 1984 x 2112
    det = CenterFace(mirror_dir / "detectors/centerface.onnx", max_side=800, coarse_side=None)
    dets = det.detect(big)
    assert len(dets) == 1
    assert set(det._nets) == {(32, 32), (768, 800)}  # 1984x2112 -> 752x800 -> blob 768x800
    # boxes/landmarks are those of the downscaled copy, scaled back to the full image
    small = cv2.resize(big, (752, 800), interpolation=cv2.INTER_AREA)  # round(1984 * 800 / 2112)
    boxes, lm = det.raw(small)
    f = np.array([1984 / 752, 2112 / 800])
    np.testing.assert_allclose(dets[0].box, (boxes[0, :4].reshape(2, 2) * f).reshape(-1), rtol=1e-5)
    np.testing.assert_allclose(dets[0].landmarks5, lm[0].reshape(5, 2) * f, rtol=1e-5)
    # and still the same face as at the original size (the detector itself varies a little with scale)
    np.testing.assert_allclose(dets[0].box / 4, [144.27, 156.20, 355.40, 422.38], atol=12.0)
    np.testing.assert_allclose(dets[0].landmarks5 / 4, ALISON_LM5, atol=8.0)


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("name,scale", [("alison1.jpg", 3), ("alison1.jpg", 8), ("dbell1.jpg", 3), ("dbell1.jpg", 5),
                                        ("jenni7.jpg", 5), ("bfegan1.jpg", 11)])
def test_large_faces_are_found_once(mirror_dir, photos_dir, detector, name, scale):
    """A face filling a camera-sized photo (the fixtures upscaled): one pass at 1600 px misses it
    or adds a partial second box; the coarse pass finds it once, where the small photo has it."""
    rgb = read_rgb(photos_dir / name)
    ref = detector.detect(rgb)[0].box  # the photo as it is: one face
    big = np.ascontiguousarray(cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))
    single = CenterFace(mirror_dir / "detectors/centerface.onnx", coarse_side=None).detect(big)
    assert len(single) != 1  # the failure this guards against (measured for every case here)
    dets = detector.detect(big)
    assert len(dets) == 1
    assert _iou(dets[0].box / scale, ref) > 0.7


def test_the_coarse_pass_shares_one_square_net(mirror_dir, photos_dir):
    """Landscape and portrait photos: one net per fine-pass size, one 640 x 640 net for every coarse
    pass (the downscaled copy is padded, not stretched), and the same face as without padding."""
    rgb = read_rgb(photos_dir / "alison1.jpg")
    det = CenterFace(mirror_dir / "detectors/centerface.onnx", max_cached_nets=8)
    land = np.ascontiguousarray(cv2.resize(rgb, (1400, 1000), interpolation=cv2.INTER_CUBIC))
    port = np.ascontiguousarray(cv2.resize(rgb, (900, 1300), interpolation=cv2.INTER_CUBIC))
    a, b = det.detect(land), det.detect(port)
    assert len(a) == 1 and len(b) == 1
    assert set(det._nets) == {(32, 32), (1408, 1024), (928, 1312), (640, 640)}
    for img, d in ((land, a[0]), (port, b[0])):
        ref = det.detect(np.ascontiguousarray(cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)))
        assert _iou(d.box, ref[0].box * 2) > 0.7
        h, w = img.shape[:2]
        assert 0 <= d.box[0] < d.box[2] <= w and 0 <= d.box[1] < d.box[3] <= h


def test_many_small_faces_still_come_from_the_fine_pass(detector, photos_dir):
    """12 faces of ~120 px in a 2400 px group photo: all found (the coarse pass sees them at ~32 px
    and leaves them to the fine pass)."""
    names = sorted(p for p in photos_dir.glob("*.jpg"))[:12]
    canvas = np.full((1800, 2400, 3), 128, np.uint8)
    for k, path in enumerate(names):
        r, c = divmod(k, 4)
        face = cv2.resize(read_rgb(path), (360, 400), interpolation=cv2.INTER_AREA)
        canvas[100 + r * 580:500 + r * 580, 100 + c * 580:460 + c * 580] = face
    dets = detector.detect(canvas)
    assert len(dets) == 12
    cells = sorted((int((d.box[1] + d.box[3]) / 2 // 600), int((d.box[0] + d.box[2]) / 2 // 600)) for d in dets)
    assert cells == [(r, c) for r in range(3) for c in range(4)]


ALISON_LM5 = [[196.31, 267.05], [291.34, 263.79], [240.67, 319.63], [203.42, 358.64], [283.37, 355.22]]


# ------------------------------------------------------------------- regressor vs the reference


def test_faceboxes_box_reproduces_reference_bit_for_bit(backend, alison, ref):
    """With the reference FaceBoxes box, pass 1 and the refinement equal the upstream numbers."""
    box = np.array(ref["box"][:4], np.float64)
    roi1 = roi_from_box(box)
    np.testing.assert_allclose(roi1, ref["roi_box"], atol=1e-3)
    p1 = backend.regress(alison, roi1)
    std = backend.param_std
    np.testing.assert_array_less(np.abs((p1 - ref["params"]) / std), 1e-3)
    lm1 = backend.landmarks(p1, roi1)
    np.testing.assert_allclose(lm1[:, :2], np.array(ref["lm68"])[:, :2], atol=0.5)
    fit = backend.fit(alison, Detection(box.astype(np.float32), 1.0, np.zeros((5, 2), np.float32)))
    np.testing.assert_allclose(fit.extras["roi_pass1"], ref["roi_box"], atol=1e-3)
    np.testing.assert_allclose(fit.extras["roi"], ref["roi_box2"], atol=1e-3)
    np.testing.assert_array_less(np.abs((fit.extras["params"] - ref["params2"]) / std), 1e-3)
    np.testing.assert_allclose(fit.landmarks68, np.array(ref["lm68_2"])[:, :2], atol=0.5)
    np.testing.assert_allclose(fit.pose, ref["ypr2"], atol=0.1)


def test_one_pass_pose_and_scale_match_reference(backend, alison, ref):
    one = LiteBackend(backend.net, backend.param_mean, backend.param_std, backend.bfm, refine=False)
    fit = one.fit(alison, Detection(np.array(ref["box"][:4], np.float32), 1.0, np.zeros((5, 2), np.float32)))
    np.testing.assert_allclose(fit.pose, ref["ypr"], atol=0.1)
    assert fit.extras["scale"] == pytest.approx(ref["scale"], rel=1e-3)
    np.testing.assert_allclose(fit.extras["camera"][:, 3], ref["t3d"], atol=1e-2)
    v = fit.vertices  # docs/lite_model.md, section 6: dense ranges
    np.testing.assert_allclose(v.min(0), [134.02, 162.65, 0.0], atol=0.5)
    np.testing.assert_allclose(v.max(0), [359.98, 439.63, 186.94], atol=0.5)


@pytest.mark.parametrize("name", PHOTOS + ["eos_image_0010.png"])
def test_centerface_pipeline_pose_matches_reference(spec_detector, backend, photos_dir, fixtures_ref, name):
    """The reference data (docs/lite_model.md, section 6) stores the CenterFace pipeline's one-pass and refined poses (2 decimals)."""
    rgb = read_rgb(photos_dir / name)
    det = spec_detector.detect(rgb)[0]
    fit = backend.fit(rgb, det)
    np.testing.assert_allclose(fit.pose, fixtures_ref[name]["cf"]["ypr_refined"], atol=0.02)
    one = LiteBackend(backend.net, backend.param_mean, backend.param_std, backend.bfm, refine=False)
    np.testing.assert_allclose(one.fit(rgb, det).pose, fixtures_ref[name]["cf"]["ypr"], atol=0.02)


def test_centerface_refined_landmarks_close_to_faceboxes_refined(detector, backend, alison, ref):
    fit = backend.fit(alison, detector.detect(alison)[0])
    lm_ref = np.array(ref["lm68_2"])[:, :2]
    iod = np.linalg.norm(lm_ref[36] - lm_ref[45])
    err = np.linalg.norm(fit.landmarks68 - lm_ref, axis=1)
    assert err.mean() < 0.02 * iod and err.max() < 0.03 * iod


# ------------------------------------------------------------------------- FaceFit conventions


def test_facefit_conventions(detector, backend, alison):
    det = detector.detect(alison)[0]
    fit = backend.fit(alison, det)
    n = 38365
    assert fit.backend == "lite" and fit.detection is det
    assert fit.vertices.shape == (n, 3) and fit.vertices.dtype == np.float32
    # the 76073 BFM triangles and the 76 that close the opening between the lips
    assert fit.triangles.shape == (76073 + 76, 3) and fit.triangles.dtype == np.int32
    assert fit.uv.shape == (n, 2) and fit.vertex_labels.shape == (n,) and fit.vertex_labels.dtype == np.uint8
    assert fit.landmarks68.shape == (68, 2) and fit.pose.shape == (3,) and fit.pose.dtype == np.float32
    assert fit.model_vertices.shape == (n, 3) and fit.mean_vertices.shape == (n, 3)
    np.testing.assert_array_equal(fit.landmarks68, fit.vertices[backend.bfm.kp68, :2])
    # image frame: landmark 36 (image-left eye) left of 45, eyes above the chin, nose tip nearest
    lm = fit.landmarks68
    assert lm[36, 0] < lm[45, 0] and lm[36, 1] < lm[8, 1]
    assert fit.vertices[:, 2].min() == 0.0
    assert fit.vertices[backend.bfm.kp68[30], 2] > np.percentile(fit.vertices[:, 2], 99)
    # winding: front faces have NEGATIVE image-space signed area (CCW in a y-up frame)
    v, t = fit.vertices, fit.triangles
    area = ((v[t[:, 1], 0] - v[t[:, 0], 0]) * (v[t[:, 2], 1] - v[t[:, 0], 1])
            - (v[t[:, 2], 0] - v[t[:, 0], 0]) * (v[t[:, 1], 1] - v[t[:, 0], 1]))
    assert (area < 0).mean() > 0.9
    # model frame is y up; the image is y down
    mv = fit.model_vertices[backend.bfm.kp68]
    assert mv[27, 1] > mv[8, 1] and lm[27, 1] < lm[8, 1]
    # trans_params: the 3DDFA-V3 224-crop equivalent of the final ROI
    W, H, s, tx, ty = fit.trans_params
    roi = fit.extras["roi"]
    assert (W, H) == (alison.shape[1], alison.shape[0])
    assert s == pytest.approx(224 / (roi[2] - roi[0]), rel=1e-5)
    assert tx == pytest.approx((roi[0] + roi[2]) / 2, abs=1e-3)
    assert H - ty == pytest.approx((roi[1] + roi[3]) / 2, abs=1e-3)


def test_crop_frame_conversion_agrees_with_the_checkpoints_own_landmark_head(backend, alison, ref):
    """The fc_lm head predicts the 68 points in the 120 crop with y DOWN; mapping the 3DMM
    landmarks (y UP in the crop) through crop_to_image must land on the same pixels."""
    roi = roi_from_box(np.array(ref["box"][:4]))
    x = torch.from_numpy(backend.preprocess(alison, roi))
    with torch.inference_mode():
        out = backend.net.forward_lm(x)[0].numpy()
    k = (roi[2] - roi[0]) / 120
    head = np.stack([(60.8 * out[:68] + 60.1) * k + roi[0], (60.8 * out[68:] + 60.1) * k + roi[1]], axis=1)
    p = backend.regress(alison, roi)
    lm = backend.landmarks(p, roi)[:, :2]
    iod = np.linalg.norm(lm[36] - lm[45])
    assert np.linalg.norm(head - lm, axis=1).mean() < 0.03 * iod
    # the flipped (wrong) convention would be far off
    wrong = crop_to_image(np.c_[lm[:, 0], lm[:, 1], np.zeros(68)], np.array([0, 0, 120, 120.0]))
    assert np.linalg.norm(head - wrong[:, :2], axis=1).mean() > 0.2 * iod


def test_mirrored_image_flips_yaw(detector, backend, photos_dir):
    for name, min_yaw in (("alison1.jpg", 1.0), ("eos_image_0010.png", 20.0)):
        rgb = read_rgb(photos_dir / name)
        mirrored = np.ascontiguousarray(rgb[:, ::-1])
        p = backend.fit(rgb, detector.detect(rgb)[0]).pose
        q = backend.fit(mirrored, detector.detect(mirrored)[0]).pose
        assert p[0] > min_yaw and q[0] < -min_yaw, (name, p, q)
        assert abs(p[0] + q[0]) < 1.5
        assert abs(p[1] - q[1]) < 1.5  # pitch unchanged


def test_roi_outside_the_image_does_not_crash(detector, backend, alison):
    far = Detection(np.array([5000, 5000, 5200, 5200], np.float32), 0.9, np.zeros((5, 2), np.float32))
    fit = backend.fit(alison, far)
    assert np.isfinite(fit.vertices).all()


# -------------------------------------------------------------------- eos_image_0010 (300-W)


@pytest.fixture(scope="module")
def eos(detector, backend, photos_dir):
    rgb = read_rgb(photos_dir / "eos_image_0010.png")
    dets = detector.detect(rgb)
    assert len(dets) == 1
    return rgb, backend.fit(rgb, dets[0]), read_pts(photos_dir / "eos_image_0010.pts")


def test_eos_landmark_error(eos):
    _, fit, gt = eos
    iod = np.linalg.norm(gt[36] - gt[45])
    nme = np.linalg.norm(fit.landmarks68 - gt, axis=1).mean() / iod
    assert nme <= 0.08, f"NME {nme:.4f}"


def test_eos_visible_labels_cover_the_eyes_and_mouth(eos):
    pytest.importorskip("faceanon._ext._raster")
    from faceanon.models.labels import visible_label_map

    rgb, fit, gt = eos
    lab = visible_label_map(fit, *rgb.shape[:2])
    assert lab.shape == rgb.shape[:2] and lab.dtype == np.uint8
    for label, sl in ((1, slice(36, 42)), (2, slice(42, 48))):
        poly = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillPoly(poly, [np.round(gt[sl]).astype(np.int32)], 1)
        cover = (lab[poly > 0] == label).mean()
        assert cover >= 0.9, f"eye label {label} covers {cover:.2%} of the ground-truth eye"
        assert (lab == label).sum() < 6 * poly.sum()  # generous, not absurd
    mouth = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillPoly(mouth, [np.round(gt[48:60]).astype(np.int32)], 1)
    assert np.isin(lab[mouth > 0], (6, 7)).mean() >= 0.85
    # brows and nose are not swallowed by the eye regions
    for k in (3, 4, 5):
        assert (lab == k).sum() > 500


def test_visible_label_map_crops_to_the_face_and_handles_outside(backend, alison, detector):
    pytest.importorskip("faceanon._ext._raster")
    from faceanon.models.labels import visible_label_map

    fit = backend.fit(alison, detector.detect(alison)[0])
    lab = visible_label_map(fit, *alison.shape[:2])
    ys, xs = np.nonzero(lab)
    assert xs.min() >= np.floor(fit.vertices[:, 0].min()) and ys.max() <= np.ceil(fit.vertices[:, 1].max())
    # label 1 (subject's right eye) is on the image LEFT
    assert np.nonzero(lab == 1)[1].mean() < np.nonzero(lab == 2)[1].mean()
    # a tiny target that misses the face
    assert not visible_label_map(fit, 10, 10).any()
