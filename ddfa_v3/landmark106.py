"""106-point landmark network ("large_base_net", docs/ddfa_v3.md, section 3) and its two-pass crop.

Quirks kept on purpose (the weights were trained with them):

* the crop padding colour is (103.94, 116.78, 123.68) - a BGR mean - applied to RGB data, and the
  same values are subtracted from the RGB crop before dividing by 255 (no channel swap);
* the soft-argmax's *first* output is the expectation over the heatmap **row** axis, yet it is used
  as image x (and the second, over columns, as y): the transposed axis is replicated exactly;
* a heatmap cell index i maps to crop pixel 16 * i (no +0.5).

Landmarks are returned in image px (x right, y down) of the full photo.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

__all__ = ["LargeBaseNet", "Landmark106", "soft_argmax_transposed", "landmark_crop", "PAD_MEAN"]

PAD_MEAN = (103.94, 116.78, 123.68)  # a BGR mean, applied to RGB (seed quirk)
INPUT = 224
HEAT = 14
EXPAND = 1.35


def _conv_bn(i: int, o: int, k: int, s: int, p: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, k, s, p, bias=False), nn.BatchNorm2d(o), nn.PReLU(o))


class InvertedResidual(nn.Module):
    def __init__(self, i: int, o: int, stride: int, residual: bool, expand: int) -> None:
        super().__init__()
        m = i * expand
        self.residual = residual
        self.conv = nn.Sequential(
            nn.Conv2d(i, m, 1, 1, 0, bias=False),
            nn.BatchNorm2d(m),
            nn.PReLU(m),
            nn.Conv2d(m, m, 3, stride, 1, groups=m, bias=False),
            nn.BatchNorm2d(m),
            nn.PReLU(m),
            nn.Conv2d(m, o, 1, 1, 0, bias=False),
            nn.BatchNorm2d(o),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


def soft_argmax_transposed(heat: torch.Tensor) -> torch.Tensor:
    """heat (B, K, 14, 14) -> (B, 2K) interleaved [first_0, second_0, first_1, ...] in [0, 13/14].

    softmax over the 196 cells (beta 1); first = sum p * row / 14, second = sum p * col / 14.
    The caller uses *first* as x (the transposed convention of the trained weights).
    """
    b, k, h, w = heat.shape
    p = torch.softmax(heat.reshape(b, k, h * w), dim=-1).reshape(b, k, h, w)
    rows = torch.arange(h, dtype=heat.dtype).view(1, 1, h, 1) / h
    cols = torch.arange(w, dtype=heat.dtype).view(1, 1, 1, w) / w
    first = (p * rows).sum(dim=(2, 3))
    second = (p * cols).sum(dim=(2, 3))
    return torch.stack([first, second], dim=-1).reshape(b, 2 * k)


class LargeBaseNet(nn.Module):
    """224x224 input -> (B, 212) normalized landmark coordinates (multiply by 224)."""

    def __init__(self, num_points: int = 106) -> None:
        super().__init__()
        self.block1 = _conv_bn(3, 64, 3, 2, 1)
        self.block2 = InvertedResidual(64, 64, 1, False, 2)
        self.block3 = InvertedResidual(64, 64, 2, False, 2)
        for k in range(4, 8):
            setattr(self, f"block{k}", InvertedResidual(64, 64, 1, True, 2))
        self.block8 = InvertedResidual(64, 128, 2, False, 2)
        self.block9 = InvertedResidual(128, 128, 1, False, 4)
        for k in range(10, 15):
            setattr(self, f"block{k}", InvertedResidual(128, 128, 1, True, 4))
        self.block15 = InvertedResidual(128, 128, 1, False, 2)
        self.block16 = InvertedResidual(128, 128, 2, False, 2)
        self.block17 = InvertedResidual(128, 128, 1, False, 2)
        self.block18 = _conv_bn(128, 256, 3, 1, 1)
        self.block19 = nn.Conv2d(256, num_points, 3, 1, 1, bias=False)

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        for k in range(1, 20):
            x = getattr(self, f"block{k}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_argmax_transposed(self.heatmaps(x))


def landmark_crop(rgb: np.ndarray, box) -> tuple[np.ndarray, float, tuple[float, float]]:
    """The seed's square crop around ``box`` = (x1, y1, x2, y2) in image px.

    Returns (crop (224, 224, 3) uint8 RGB, side sz of the square in photo px, unclipped top-left
    corner (tx1, ty1)). Photo px = crop px * sz / 224 + (tx1, ty1).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    h0, w0 = rgb.shape[:2]
    w, h = x2 - x1 + 1.0, y2 - y1 + 1.0
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    sz = max(max(w, h) * EXPAND, 1.0)
    sx1, sy1 = cx - sz / 2.0, cy - sz / 2.0
    sx2, sy2 = sx1 + sz, sy1 + sz
    cx1, cy1 = max(sx1, 0.0), max(sy1, 0.0)
    cx2, cy2 = min(sx2, float(w0)), min(sy2, float(h0))
    dx, dy = cx1 - sx1, cy1 - sy1
    edx, edy = sx2 - cx2, sy2 - cy2
    if int(cx2) > int(cx1) and int(cy2) > int(cy1):
        crop = rgb[int(cy1):int(cy2), int(cx1):int(cx2)]
        crop = cv2.copyMakeBorder(np.ascontiguousarray(crop), int(dy), int(edy), int(dx), int(edx),
                                  cv2.BORDER_CONSTANT, value=PAD_MEAN)
    else:  # the square misses the photo entirely: all padding
        n = max(1, int(sz))
        crop = np.empty((n, n, 3), np.uint8)
        crop[:] = np.round(np.array(PAD_MEAN)).astype(np.uint8)
    crop = cv2.resize(crop, (INPUT, INPUT), interpolation=cv2.INTER_LINEAR)
    return crop, sz, (sx1, sy1)


class Landmark106:
    """Two-pass 106-point landmarks for one face box; ``__call__(rgb, box) -> (106, 2) float32``."""

    def __init__(self, net: LargeBaseNet) -> None:
        self.net = net.eval()

    @torch.no_grad()
    def run_once(self, rgb: np.ndarray, box) -> np.ndarray:
        crop, sz, (tx1, ty1) = landmark_crop(rgb, box)
        x = (crop.astype(np.float64) - np.array(PAD_MEAN)) / 255.0
        t = torch.from_numpy(x.transpose(2, 0, 1).astype(np.float32).copy())[None]
        dev = next(self.net.parameters()).device
        out = self.net(t.to(dev))[0].float().cpu().numpy().astype(np.float64) * INPUT
        pts = out.reshape(-1, 2)  # column 0 = "first" (row expectation) used as x: seed convention
        pts = pts * (sz / INPUT) + np.array([tx1, ty1])
        return pts.astype(np.float32)

    def __call__(self, rgb: np.ndarray, box) -> np.ndarray:
        pts = self.run_once(rgb, box)
        box2 = (pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
        return self.run_once(rgb, box2)
