"""Lite backend pieces that need no model file: ROI rules, cropping, the crop -> image conversion,
pose extraction, CenterFace decoding/NMS, the safe unpickler and the mb05 architecture."""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pytest
import torch

from faceanon.errors import AssetError, ImageError
from faceanon.models.base import as_rgb_uint8
from faceanon.models.bfm import safe_load_pickle
from faceanon.models.centerface import decode, nms
from faceanon.models.lite import crop_roi, crop_to_image, pose_from_camera, roi_from_box, roi_from_points
from faceanon.models.mb05 import MobileNetV1

# ------------------------------------------------------------------------------------------- ROI


def test_roi_from_box_matches_spec_reference():
    # docs/lite_model.md, section 6: FaceBoxes box of alison1 -> pass-1 ROI
    roi = roi_from_box([138.1719512939453, 151.58975219726562, 354.6531982421875, 431.8039245605469, 0.99])
    np.testing.assert_allclose(roi, [50.412567, 130.465515, 442.412567, 522.465515], atol=1e-4)
    assert roi[2] - roi[0] == 392  # int(1.58 * mean side), truncated


def test_roi_from_points_is_the_diagonal_of_the_enclosing_square():
    pts = np.array([[10.0, 20.0], [30.0, 20.0], [20.0, 60.0]])  # w 20, h 40 -> square side 40
    roi = roi_from_points(pts)
    side = math.sqrt(2) * 40
    np.testing.assert_allclose(roi, [20 - side / 2, 40 - side / 2, 20 + side / 2, 40 + side / 2])


# ------------------------------------------------------------------------------------------ crop


def test_crop_inside_and_zero_padding_outside():
    img = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    inside = crop_roi(img, [2.2, 3.4, 6.6, 8.5])  # rounds to 2, 3, 7, 8 (8.5 -> 8: half to even)
    assert inside.shape == (5, 5, 3)
    np.testing.assert_array_equal(inside, img[3:8, 2:7])
    out = crop_roi(img, [-3, -2, 4, 5])
    assert out.shape == (7, 7, 3)
    np.testing.assert_array_equal(out[2:, 3:], img[0:5, 0:4])
    assert not out[:2].any() and not out[:, :3].any()


def test_crop_entirely_outside_or_degenerate_is_black_not_an_error():
    img = np.full((10, 10, 3), 200, np.uint8)
    far = crop_roi(img, [50, 50, 70, 70])
    assert far.shape == (20, 20, 3) and not far.any()
    tiny = crop_roi(img, [4.2, 4.2, 4.3, 4.3])
    assert tiny.shape == (1, 1, 3)


# ------------------------------------------------------------- crop frame (y up) -> image (y down)


def test_crop_to_image_flips_y_and_scales():
    roi = np.array([100.0, 50.0, 340.0, 290.0])  # side 240 -> 2 px per crop px
    pts = np.array([
        [1.0, 120.0, 1.0],  # crop top-left corner (y up: y = 120 is the TOP row)
        [61.0, 60.0, 11.0],  # centre
        [121.0, 0.0, 1.0],  # bottom-right
    ])
    out = crop_to_image(pts, roi)
    np.testing.assert_allclose(out[0], [100.0, 50.0, 0.0])
    np.testing.assert_allclose(out[1], [220.0, 170.0, 20.0])
    np.testing.assert_allclose(out[2], [340.0, 290.0, 0.0])
    # a point HIGHER in the crop frame (larger y) is higher in the image (smaller row)
    up = crop_to_image(np.array([[60.0, 100.0, 0.0], [60.0, 20.0, 0.0]]), roi)
    assert up[0, 1] < up[1, 1]
    # z keeps its orientation: larger crop z -> larger image z (nearer)
    assert crop_to_image(np.array([[0, 0, 50.0]]), roi)[0, 2] > crop_to_image(np.array([[0, 0, 5.0]]), roi)[0, 2]


# ------------------------------------------------------------------------------------------ pose


def _rot(yaw, pitch, roll):
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(-y), 0, math.sin(-y)], [0, 1, 0], [-math.sin(-y), 0, math.cos(-y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.mark.parametrize("ypr", [(0, 0, 0), (25, 0, 0), (-30, 10, 5), (5, -20, -12), (60, 15, 30)])
def test_pose_recovers_synthetic_rotation(ypr):
    P = np.concatenate([4.6e-4 * _rot(*ypr), [[60.0], [70.0], [-66.0]]], axis=1)
    got, R, s = pose_from_camera(P.reshape(-1))
    np.testing.assert_allclose(got, ypr, atol=1e-6)
    assert s == pytest.approx(4.6e-4)
    np.testing.assert_allclose(R, _rot(*ypr), atol=1e-9)


def test_pose_gimbal_branches():
    got, _, _ = pose_from_camera(np.concatenate([_rot(90, 0, 0), np.zeros((3, 1))], 1))
    assert got[0] == pytest.approx(90) and got[2] == 0
    got, _, _ = pose_from_camera(np.concatenate([_rot(-90, 0, 0), np.zeros((3, 1))], 1))
    assert got[0] == pytest.approx(-90) and got[2] == 0


# ----------------------------------------------------------------------------- CenterFace decode


def test_decode_applies_the_clamping_quirk_and_channel_order():
    h, w = 4, 5
    heat = np.zeros((h, w), np.float32)
    heat[0, 0] = 0.9  # near the top-left corner: x1/y1 get clamped to 0
    heat[2, 3] = 0.6
    scale = np.zeros((2, h, w), np.float32)
    scale[0, 0, 0], scale[1, 0, 0] = np.log(4.0), np.log(2.0)  # h_box 16, w_box 8
    offset = np.zeros((2, h, w), np.float32)
    offset[0, 2, 3], offset[1, 2, 3] = 0.25, -0.5  # y then x
    lms = np.zeros((10, h, w), np.float32)
    lms[1, 0, 0], lms[0, 0, 0] = 0.5, 0.25  # landmark 0: x from channel 1, y from channel 0
    boxes, lm = decode(heat, scale, offset, lms, (16, 20), threshold=0.5)
    assert boxes.shape == (2, 5) and lm.shape == (2, 10)
    # cell (0,0): centre (2,2); x1 = max(0, 2-4) = 0, x2 = 0 + 8 (from the CLAMPED x1), y2 = min(0+16, 16)
    np.testing.assert_allclose(boxes[0], [0, 0, 8, 16, 0.9], atol=1e-6)
    np.testing.assert_allclose(lm[0, :2], [0.5 * 8, 0.25 * 16])
    # cell (2,3): w = h = 4; centre x = 4*(3-0.5+0.5) = 12, y = 4*(2+0.25+0.5) = 11
    np.testing.assert_allclose(boxes[1], [10, 9, 14, 13, 0.6], atol=1e-6)


def test_decode_threshold_is_strict_and_empty_shapes():
    heat = np.full((2, 2), 0.5, np.float32)
    z = np.zeros((2, 2, 2), np.float32)
    boxes, lm = decode(heat, z, z, np.zeros((10, 2, 2), np.float32), (8, 8), threshold=0.5)
    assert boxes.shape == (0, 5) and lm.shape == (0, 10)


def test_nms_greedy_by_score():
    boxes = np.array([
        [0, 0, 10, 10, 0.7],
        [1, 1, 11, 11, 0.9],  # IoU with the first = 81/119 = 0.68 -> suppresses it
        [20, 20, 30, 30, 0.8],
        [0, 0, 10, 5.9, 0.95],  # visited first; IoU 0.59 with box 0 and 44.1/114.9 = 0.38 with box 1
    ])
    assert nms(boxes, 0.3).tolist() == [3, 2]
    assert nms(boxes, 0.4).tolist() == [3, 1, 2]  # 0.38 < 0.4 keeps box 1; box 0 still goes
    keep2 = nms(boxes[:3], 0.3)
    assert keep2.tolist() == [1, 2]


# ---------------------------------------------------------------------------- image argument check


def test_image_argument_checks():
    assert as_rgb_uint8(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert as_rgb_uint8(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    with pytest.raises(ImageError, match="uint8"):
        as_rgb_uint8(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ImageError, match=r"\(H, W, 3\)"):
        as_rgb_uint8(np.zeros((4, 5, 2), np.uint8))


# --------------------------------------------------------------------------------- safe unpickler


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_safe_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"mean": _Evil(marker)}))
    with pytest.raises(AssetError, match="system"):
        safe_load_pickle(bad)
    assert not marker.exists()


def test_safe_unpickler_loads_numpy_arrays(tmp_path):
    good = tmp_path / "ok.pkl"
    data = {"mean": np.arange(62, dtype=np.float32), "tri": np.asfortranarray(np.ones((3, 4), np.int32))}
    for protocol in (2, 3, 4):  # 3DDFA's files: protocols 3 and 4
        good.write_bytes(pickle.dumps(data, protocol=protocol))
        got = safe_load_pickle(good)
        np.testing.assert_array_equal(got["mean"], data["mean"])
        np.testing.assert_array_equal(got["tri"], data["tri"])


# ------------------------------------------------------------------------------------------ mb05


def test_mb05_architecture_matches_spec():
    net = MobileNetV1().eval()
    n = sum(p.numel() for name, p in net.named_parameters() if not name.startswith("fc_lm."))
    assert n == 850_398  # docs/lite_model.md, section 1.1 (without fc_lm)
    keys = net.state_dict().keys()
    assert len(keys) == 166  # same count as the checkpoint (fc_param -> fc, fc_lm kept)
    assert "dw5_6.conv_sep.weight" in keys and "fc.weight" in keys
    with torch.inference_mode():
        assert net(torch.zeros(2, 3, 120, 120)).shape == (2, 62)


def test_preprocess_feeds_bgr_normalised():
    from faceanon.models.lite import LiteBackend

    rgb = np.zeros((50, 40, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    x = LiteBackend.preprocess(rgb, np.array([0.0, 0.0, 40.0, 40.0]))
    assert x.shape == (1, 3, 120, 120) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 2], (255 - 127.5) / 128)  # channel 2 = R
    np.testing.assert_allclose(x[0, 0], -127.5 / 128)  # channel 0 = B
