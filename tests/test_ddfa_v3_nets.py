"""RetinaFace priors / decoding / NMS / post-processing, the 106-point crop and soft-argmax, net_recon heads."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from ddfa_v3 import retinaface as rf
from ddfa_v3.landmark106 import PAD_MEAN, Landmark106, landmark_crop, soft_argmax_transposed


# --- RetinaFace ---------------------------------------------------------------------------------------
def test_priors_count_and_order():
    p = rf.make_priors()
    assert p.shape == (10752, 4) and p.dtype == np.float32
    np.testing.assert_allclose(p[0], np.array([4, 4, 16, 16]) / 512)
    np.testing.assert_allclose(p[1], np.array([4, 4, 32, 32]) / 512)  # 2 sizes per cell, then next column
    np.testing.assert_allclose(p[2], np.array([12, 4, 16, 16]) / 512)
    np.testing.assert_allclose(p[2 * 64], np.array([4, 12, 16, 16]) / 512)  # next row
    np.testing.assert_allclose(p[8192], np.array([8, 8, 64, 64]) / 512)  # stride-16 level
    np.testing.assert_allclose(p[8192 + 2048], np.array([16, 16, 256, 256]) / 512)  # stride-32 level
    np.testing.assert_allclose(p[-1], np.array([496, 496, 512, 512]) / 512)


def test_decode_zero_offsets_gives_priors():
    pr = torch.from_numpy(rf.make_priors())
    b = rf.decode_boxes(torch.zeros(len(pr), 4), pr)
    np.testing.assert_allclose(b[0].numpy(), np.array([-4, -4, 12, 12]) / 512, atol=1e-7)
    loc = torch.tensor([[1.0, -1.0, 0.0, np.log(2) / 0.2]])
    b = rf.decode_boxes(loc, pr[-1:])[0].numpy() * 512  # prior (496, 496, 512, 512)
    np.testing.assert_allclose(b, [496 + 51.2 - 256, 496 - 51.2 - 512, 496 + 51.2 + 256, 496 - 51.2 + 512], atol=1e-3)
    lm = rf.decode_landmarks(torch.ones(1, 10), pr[-1:])[0].numpy() * 512
    np.testing.assert_allclose(lm, np.full(10, 496 + 51.2), atol=1e-3)


def test_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.9, 0.95, 0.8, 0.9], np.float32)
    keep = rf.nms(boxes, scores, 0.4)
    assert keep.tolist() == [1, 2]
    assert rf.nms(boxes, scores, 0.99).tolist() == [1, 0, 3, 2]  # ties keep input order
    # IoU exactly at the threshold is kept (suppress only IoU > threshold)
    two = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)  # IoU = 50 / 150
    assert rf.nms(two, np.array([1.0, 0.5]), 1 / 3 + 1e-6).tolist() == [0, 1]
    assert rf.nms(two, np.array([1.0, 0.5]), 0.33).tolist() == [0]


def test_preprocess_resizes_longest_side_and_pads_centred():
    rgb = np.full((1600, 1200, 3), 255, np.uint8)
    x, pads, scale = rf.preprocess(rgb)
    assert x.shape == (1, 3, 512, 512) and x.dtype == torch.float32
    assert pads == (64, 0, 64, 0) and scale == 1600 / 512
    assert torch.all(x[0, :, :, :64] == 0) and torch.all(x[0, :, :, -64:] == 0)
    np.testing.assert_allclose(x[0, :, 10, 100].numpy(), (1 - rf.MEAN) / rf.STD, rtol=1e-6)


class _StubRetina(nn.Module):
    """Returns fixed head outputs: faces at chosen anchors."""

    def __init__(self, positives: dict[int, tuple[float, list[float]]]) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        a = 10752
        self.loc = torch.zeros(1, a, 4)
        self.conf = torch.zeros(1, a, 2)
        self.conf[..., 0] = 10.0
        for idx, (logit, loc) in positives.items():
            self.conf[0, idx] = torch.tensor([0.0, logit])
            self.loc[0, idx] = torch.tensor(loc)

    def forward(self, x):
        return self.loc, self.conf, torch.zeros(1, 10752, 10)


def test_detector_returns_all_faces_in_score_order():
    # stride-32 level, 256-px anchors (type 0) at cells (2, 2) and (12, 12), plus a duplicate next to the first
    base = 8192 + 2048

    def idx(i, j):
        return base + (i * 16 + j) * 2

    stub = _StubRetina({idx(2, 2): (3.0, [0, 0, 0, 0]), idx(2, 3): (2.0, [0, 0, 0, 0]),
                        idx(12, 12): (5.0, [0, 0, 0, 0]), idx(8, 8): (0.5, [0, 0, 0, 0])})
    det = rf.RetinaFaceDetector(stub)
    rgb = np.zeros((1024, 1024, 3), np.uint8)  # scale 2, no padding
    faces = det.detect(rgb)
    assert len(faces) == 2  # (2,3) is suppressed by (2,2); (8,8) scores below 0.7
    assert faces[0].score > faces[1].score
    # cell (12, 12): centre (400, 400) in the canvas, side 256 -> [272, 272, 528, 528] * 2
    np.testing.assert_array_equal(faces[0].box, [544, 544, 1056, 1056])  # unclipped box kept
    np.testing.assert_array_equal(faces[1].box, [-96, -96, 416, 416])  # centre (80, 80) in the canvas
    assert faces[0].box.dtype == np.float32 and faces[0].landmarks5.shape == (5, 2)


def test_detector_unpads_truncates_and_drops_degenerate():
    base = 8192 + 2048
    stub = _StubRetina({base + (8 * 16 + 8) * 2: (5.0, [0.123, 0.0, 0.0, 0.0]),  # centre (272 + 0.123 * 0.1 * 256, 272)
                        base + (8 * 16 + 0) * 2: (5.0, [0, 0, -20.0, -20.0])})  # tiny box at x=16: outside the photo
    det = rf.RetinaFaceDetector(stub)
    rgb = np.zeros((600, 300, 3), np.uint8)  # resized to 256x512, pads left/right 128, scale 600/512
    faces = det.detect(rgb)
    assert len(faces) == 1
    dx = 0.123 * 0.1 * 256
    box_canvas = np.trunc(np.array([272 + dx - 128, 272 - 128, 272 + dx + 128, 272 + 128]))
    expected = np.trunc((box_canvas - [128, 0, 128, 0]) * (600 / 512))
    np.testing.assert_array_equal(faces[0].box, expected)


def test_no_face_gives_empty_list():
    det = rf.RetinaFaceDetector(_StubRetina({}))
    assert det.detect(np.zeros((64, 64, 3), np.uint8)) == []


# --- 106 landmarks ----------------------------------------------------------------------------------
def test_soft_argmax_first_output_is_the_row_expectation():
    heat = torch.full((1, 2, 14, 14), -50.0)
    heat[0, 0, 3, 10] = 50.0  # row 3, column 10
    heat[0, 1, 12, 1] = 50.0
    out = soft_argmax_transposed(heat)[0].numpy()
    np.testing.assert_allclose(out, [3 / 14, 10 / 14, 12 / 14, 1 / 14], atol=1e-6)


class _StubLandmarks(nn.Module):
    def __init__(self, out: np.ndarray) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.out = torch.from_numpy(out.astype(np.float32))[None]
        self.seen = []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.out


def test_landmark_crop_pads_with_bgr_mean_on_rgb():
    rgb = np.full((100, 80, 3), 200, np.uint8)
    crop, sz, (tx1, ty1) = landmark_crop(rgb, (-20, -20, 39, 39))  # w = h = 60, centre 9.5, square 81 px from -31
    assert sz == pytest.approx(81.0) and (tx1, ty1) == pytest.approx((-31.0, -31.0))
    np.testing.assert_array_equal(crop[0, 0], [104, 117, 124])  # cv2 rounds 103.94/116.78/123.68
    np.testing.assert_array_equal(crop[-1, -1], [200, 200, 200])
    # fully inside: the crop is the cv2 bilinear resize of the square
    crop2, sz2, (x1, y1) = landmark_crop(rgb, (20, 20, 39, 39))
    assert np.all(crop2 == 200) and sz2 == pytest.approx(27.0)


def test_landmark_first_output_used_as_x_and_two_passes():
    out = np.zeros(212)
    out[0::2] = 0.25  # "first" (row expectation) -> x
    out[1::2] = 0.75  # "second" -> y
    out[0], out[1] = 0.0, 0.0
    stub = _StubLandmarks(out)
    lm = Landmark106(stub)
    rgb = np.zeros((300, 300, 3), np.uint8)
    pts = lm.run_once(rgb, (100, 100, 199, 199))  # w = 100, sz = 135, corner (82, 82)
    np.testing.assert_allclose(pts[1], [0.25 * 135 + 82, 0.75 * 135 + 82], atol=1e-4)
    np.testing.assert_allclose(pts[0], [82, 82], atol=1e-4)
    x = stub.seen[0][0].numpy()
    np.testing.assert_allclose(x[:, 5, 5], -np.array(PAD_MEAN) / 255, atol=1e-6)  # black pixel, mean removed
    stub.seen.clear()
    lm(rgb, (100, 100, 199, 199))
    assert len(stub.seen) == 2


# --- net_recon head order -------------------------------------------------------------------------------
def test_recon_heads_concatenate_in_order():
    from ddfa_v3.recon_net import HEAD_SIZES, ReconNet, split_coeffs

    net = ReconNet("resnet50").eval()
    with torch.no_grad():
        for i, h in enumerate(net.final_layers):
            h.bias.fill_(float(i))
        out = net(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 257) and sum(HEAD_SIZES) == 257
    expected = np.concatenate([np.full(c, float(i)) for i, c in enumerate(HEAD_SIZES)])
    np.testing.assert_array_equal(out[0].numpy(), expected)
    d = split_coeffs(out)
    assert d["angle"].shape == (1, 3) and torch.all(d["angle"] == 3) and torch.all(d["gamma"] == 4)
    assert d["trans"].tolist() == [[5.0, 5.0, 6.0]]


def test_cv2_pad_rounding_assumption():
    img = cv2.copyMakeBorder(np.zeros((1, 1, 3), np.uint8), 1, 0, 0, 0, cv2.BORDER_CONSTANT, value=PAD_MEAN)
    np.testing.assert_array_equal(img[0, 0], [104, 117, 124])
