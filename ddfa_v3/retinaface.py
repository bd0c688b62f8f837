"""RetinaFace-ResNet50 face detector (docs/ddfa_v3.md, section 2), used for the face boxes.

Network: ResNet-50 trunk (C3/C4/C5) -> FPN (256 ch) -> one SSH module per level -> class / box /
5-landmark heads with 2 anchors per cell. Priors are built for a fixed 512x512 canvas (10,752
anchors). Post-processing: score > 0.7, NMS at IoU 0.4 (own implementation, no torchvision),
boxes truncated to int in the canvas, un-padded and rescaled to the photo, truncated again.

Difference from the seed (seed bug S-4, docs/seed_compatibility.md): :meth:`RetinaFaceDetector.detect` returns *every* face, highest
score first, as :class:`FaceBox` records in image px; no face gives ``[]`` (the seed returned a
sentinel with score -1).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .resnet import ResNet50Trunk

__all__ = [
    "CANVAS",
    "FaceBox",
    "RetinaFaceNet",
    "RetinaFaceDetector",
    "make_priors",
    "decode_boxes",
    "decode_landmarks",
    "nms",
    "preprocess",
]

CANVAS = 512
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


class FaceBox(NamedTuple):
    """One detected face in image px (x right, y down): ``box`` (4,) float32 [x1, y1, x2, y2],
    ``score`` in (0, 1], ``landmarks5`` (5, 2) float32 (image-left eye, image-right eye, nose tip,
    image-left and image-right mouth corner). The project's adapter makes a ``Detection`` of it."""

    box: np.ndarray
    score: float
    landmarks5: np.ndarray


def _conv_bn(i: int, o: int, k: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(i, o, k, stride=1, padding=k // 2, bias=False), nn.BatchNorm2d(o)]
    if relu:  # leaky slope 0 for out_channels > 64 in the original: a plain ReLU
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int] = (512, 1024, 2048), out: int = 256) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out, 1, True)
        self.output2 = _conv_bn(in_channels[1], out, 1, True)
        self.output3 = _conv_bn(in_channels[2], out, 1, True)
        self.merge1 = _conv_bn(out, out, 3, True)
        self.merge2 = _conv_bn(out, out, 3, True)

    def forward(self, c3: torch.Tensor, c4: torch.Tensor, c5: torch.Tensor) -> list[torch.Tensor]:
        o1, o2, o3 = self.output1(c3), self.output2(c4), self.output3(c5)
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[-2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[-2:], mode="nearest"))
        return [o1, o2, o3]


class SSH(nn.Module):
    def __init__(self, ch: int = 256) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(ch, ch // 2, 3, False)
        self.conv5X5_1 = _conv_bn(ch, ch // 4, 3, True)
        self.conv5X5_2 = _conv_bn(ch // 4, ch // 4, 3, False)
        self.conv7X7_2 = _conv_bn(ch // 4, ch // 4, 3, True)
        self.conv7x7_3 = _conv_bn(ch // 4, ch // 4, 3, False)  # lower-case x, as in the checkpoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv3X3(x)
        b1 = self.conv5X5_1(x)
        b = self.conv5X5_2(b1)
        c = self.conv7x7_3(self.conv7X7_2(b1))
        return F.relu(torch.cat([a, b, c], dim=1))


class _Head(nn.Module):
    def __init__(self, ch: int, per_anchor: int, anchors: int = 2) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(ch, anchors * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return y.view(y.shape[0], -1, self.per_anchor)


class RetinaFaceNet(nn.Module):
    """forward(x (B,3,512,512) normalized) -> (loc (B,A,4), conf logits (B,A,2), landmarks (B,A,10))."""

    def __init__(self) -> None:
        super().__init__()
        self.body = ResNet50Trunk()
        self.fpn = FPN()
        self.ssh1, self.ssh2, self.ssh3 = SSH(), SSH(), SSH()
        self.ClassHead = nn.ModuleList([_Head(256, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head(256, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head(256, 10) for _ in range(3)])

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        _, c3, c4, c5 = self.body(x)
        p = self.fpn(c3, c4, c5)
        return [self.ssh1(p[0]), self.ssh2(p[1]), self.ssh3(p[2])]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1)
        ldm = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1)
        return loc, conf, ldm


def make_priors(canvas: int = CANVAS) -> np.ndarray:
    """(A, 4) float32 anchors [cx, cy, w, h] normalized by the canvas; A = 10,752 for 512.

    Order: level (stride 8, 16, 32), then row i, column j, then min size - the head reshape order.
    """
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        n = math.ceil(canvas / step)
        ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        cx = (jj.reshape(-1, 1) + 0.5) * step / canvas
        cy = (ii.reshape(-1, 1) + 0.5) * step / canvas
        s = np.array(sizes, np.float64).reshape(1, -1) / canvas
        cx, cy, s = np.broadcast_arrays(cx, cy, s)
        out.append(np.stack([cx, cy, s, s], axis=-1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """loc (A,4), priors (A,4) -> boxes (A,4) [x1,y1,x2,y2] normalized (multiply by the canvas)."""
    c = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    wh = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    return torch.cat([c - wh / 2, c + wh / 2], dim=1)


def decode_landmarks(pre: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """pre (A,10) -> (A,10) normalized [x0,y0,...,x4,y4]."""
    pts = priors[:, None, :2] + pre.view(-1, 5, 2) * VARIANCES[0] * priors[:, None, 2:]
    return pts.reshape(-1, 10)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS (torchvision semantics: area = (x2-x1)*(y2-y1), suppress IoU > threshold).

    boxes (K,4) float, scores (K,). Returns kept indices in descending score order
    (ties keep the input order).
    """
    boxes = np.asarray(boxes, np.float32)
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    keep = []
    suppressed = np.zeros(len(boxes), bool)
    for idx in order:
        if suppressed[idx]:
            continue
        keep.append(idx)
        xx1 = np.maximum(x1[idx], x1)
        yy1 = np.maximum(y1[idx], y1)
        xx2 = np.minimum(x2[idx], x2)
        yy2 = np.minimum(y2[idx], y2)
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        union = area[idx] + area - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        suppressed |= iou > iou_threshold
    return np.asarray(keep, np.int64)


def preprocess(rgb: np.ndarray, canvas: int = CANVAS) -> tuple[torch.Tensor, tuple[int, int, int, int], float]:
    """RGB uint8 (H0,W0,3) -> ((1,3,canvas,canvas) float32, pads (x_min,y_min,x_max,y_max), scale).

    Longest side resized to ``canvas`` (cv2 bilinear, like albumentations LongestMaxSize), ImageNet
    normalization, zero padding centred. ``scale`` = max(H0, W0) / canvas maps canvas px to photo px.
    """
    h0, w0 = rgb.shape[:2]
    r = canvas / float(max(h0, w0))
    nh, nw = max(1, int(round(h0 * r))), max(1, int(round(w0 * r)))
    img = rgb if (nh, nw) == (h0, w0) else cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    x = (img.astype(np.float32) / 255.0 - MEAN) / STD
    top, left = (canvas - nh) // 2, (canvas - nw) // 2
    bottom, right = canvas - nh - top, canvas - nw - left
    out = np.zeros((canvas, canvas, 3), np.float32)
    out[top:top + nh, left:left + nw] = x
    t = torch.from_numpy(out.transpose(2, 0, 1).copy())[None]
    return t, (left, top, right, bottom), max(h0, w0) / float(canvas)


def _image_left_first(pts: np.ndarray) -> np.ndarray:
    """Order the eye pair and the mouth-corner pair image-left first (the FaceBox contract)."""
    pts = pts.copy()
    for a, b in ((0, 1), (3, 4)):
        if pts[a, 0] > pts[b, 0]:
            pts[[a, b]] = pts[[b, a]]
    return pts


class RetinaFaceDetector:
    """Detector wrapper: ``detect(rgb) -> list[FaceBox]`` (all faces, highest score first)."""

    def __init__(self, net: RetinaFaceNet, score_threshold: float = 0.7, nms_threshold: float = 0.4) -> None:
        self.net = net.eval()
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.priors = torch.from_numpy(make_priors(CANVAS))

    @torch.no_grad()
    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        h0, w0 = rgb.shape[:2]
        x, pads, scale = preprocess(rgb)
        dev = next(self.net.parameters()).device
        loc, conf, ldm = (t.float().cpu() for t in self.net(x.to(dev)))
        boxes = decode_boxes(loc[0], self.priors) * CANVAS
        lms = decode_landmarks(ldm[0], self.priors) * CANVAS
        scores = F.softmax(conf[0], dim=-1)[:, 1]
        sel = torch.nonzero(scores > self.score_threshold).flatten()
        if sel.numel() == 0:
            return []
        boxes, lms, scores = boxes[sel].numpy(), lms[sel].numpy(), scores[sel].numpy()
        order = np.argsort(-scores, kind="stable")
        boxes, lms, scores = boxes[order], lms[order], scores[order]
        keep = nms(boxes, scores, self.nms_threshold)
        out: list[FaceBox] = []
        px, py = pads[0], pads[1]
        for k in keep:
            b = np.trunc(boxes[k]).astype(np.int64)  # cast to int in the canvas
            b = b - np.array([px, py, px, py])
            b = np.trunc(b * scale).astype(np.int64)  # back to the photo, truncated again
            cx1, cx2 = np.clip(b[[0, 2]], 0, w0 - 1)
            cy1, cy2 = np.clip(b[[1, 3]], 0, h0 - 1)
            if cx1 >= cx2 or cy1 >= cy2:  # degenerate once clipped: dropped (the unclipped box is kept)
                continue
            pts = (lms[k].reshape(5, 2) - np.array([px, py], np.float32)) * scale
            pts = _image_left_first(pts)
            out.append(FaceBox(box=b.astype(np.float32), score=float(scores[k]),
                               landmarks5=pts.astype(np.float32)))
        return out
