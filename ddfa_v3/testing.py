"""Synthetic 3DDFA-V3 asset set for tests (the official weights are not obtainable here).

:func:`write_synthetic_assets` writes the five files the real set has, under their real names and
with the real wrapping, so every loader and the whole ``DDFAv3.detect`` / ``fit`` path run on them:

* ``net_recon.pth`` - ``{'net_recon': state_dict}`` of the ResNet-50 (or MobileNet-V3) ReconNet;
  random trunk, heads with zero weights and small fixed biases (a slightly posed, non-mean face);
* ``large_base_net.pth`` - ``{'state_dict': {'module.<key>': ...}}``; weights designed so that the
  net outputs one fixed, face-shaped 106-point layout whatever the input (a fixed point of the
  two-pass crop);
* ``retinaface_resnet50_2020-07-20_old_torch.pth`` - a plain state_dict designed so that exactly
  one face is detected on any image: a box of ~45 % of the 512 canvas at its centre (the trunk
  turns zero padding into a centre-peaked field; the class head thresholds it);
* ``face_model.npy`` - a 0-d object array holding the documented dict (docs/ddfa_v3.md, section 6) of a small synthetic
  face mesh (N ~ 2,000 vertices), with all keys, 0-based ``tri``/``point_buf`` (pad = M), 8
  annotation parts, 33 ``parallel`` groups and 68/106/134 landmark ids;
* ``similarity_Lm3D_all.mat`` - ``{'lm': (68, 3)}`` whose 5-point template equals
  :data:`ddfa_v3.align.TEMPLATE_5`.

Usage::

    from ddfa_v3.testing import write_synthetic_assets
    paths = write_synthetic_assets(tmp_path)          # {'net_recon': Path, 'face_model': Path, ...}
    model = DDFAv3(**paths)

Also: :func:`random_state_dict` (random weights for any module, exact keys), the ``wrap_*``
helpers (the real files' wrapping) and :func:`synthetic_face_model` (the dict itself).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .align import TEMPLATE_5
from .landmark106 import LargeBaseNet
from .recon_net import ReconNet
from .retinaface import RetinaFaceNet

__all__ = [
    "ASSET_FILES",
    "write_synthetic_assets",
    "synthetic_face_model",
    "synthetic_lm68",
    "synthetic_layout106",
    "random_state_dict",
    "wrap_net_recon",
    "wrap_large_base_net",
    "wrap_retinaface",
    "retinaface_one_face",
    "landmark_net_fixed",
    "recon_net_synthetic",
]

#: constructor argument of DDFAv3 -> file name of the real asset set
ASSET_FILES = {
    "net_recon": "net_recon.pth",
    "face_model": "face_model.npy",
    "large_base_net": "large_base_net.pth",
    "retinaface": "retinaface_resnet50_2020-07-20_old_torch.pth",
    "similarity_lm3d": "similarity_Lm3D_all.mat",
}


# --- generic helpers ------------------------------------------------------------------------------
def random_state_dict(module: nn.Module, seed: int = 0, num_batches_tracked: bool = True) -> dict[str, torch.Tensor]:
    """A state_dict with ``module``'s exact keys, shapes and dtypes and random (well-scaled) values.

    Weight tensors get He-scaled normal values, 1-D weights (BatchNorm / PReLU) 1 +- 0.1, biases and
    running means small values, running variances in [1, 1.1], so activations stay O(1).
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            if num_batches_tracked:
                out[k] = torch.zeros((), dtype=v.dtype)
            continue
        if not v.is_floating_point():  # pragma: no cover - no other integer tensors in these nets
            out[k] = v.clone()
        elif k.endswith("running_var"):
            out[k] = 1.0 + 0.1 * torch.rand(v.shape, generator=g)
        elif k.endswith("running_mean") or k.endswith("bias"):
            out[k] = 0.01 * torch.randn(v.shape, generator=g)
        elif v.dim() >= 2:
            fan_in = max(1, v[0].numel())
            out[k] = torch.randn(v.shape, generator=g) * math.sqrt(1.0 / fan_in)
        else:
            out[k] = 1.0 + 0.1 * torch.randn(v.shape, generator=g)
    return out


def wrap_net_recon(sd: dict) -> dict:
    return {"net_recon": sd}


def wrap_large_base_net(sd: dict, module_prefix: bool = True) -> dict:
    return {"state_dict": {("module." + k if module_prefix else k): v for k, v in sd.items()}}


def wrap_retinaface(sd: dict) -> dict:
    return dict(sd)


def _identity_bn(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1)
            m.bias.data.zero_()
            m.running_mean.zero_()
            m.running_var.fill_(1)


def _zero_params(net: nn.Module) -> None:
    for p in net.parameters():
        p.data.zero_()
    _identity_bn(net)


_BN = float(1.0 / np.sqrt(np.float32(1.0) + np.float32(1e-5)))  # eval BatchNorm with mean 0, var 1


def _box(x: torch.Tensor, stride: int, scale: float) -> torch.Tensor:
    w = torch.full((1, 1, 3, 3), scale, dtype=torch.float32)
    return torch.nn.functional.conv2d(x, w, stride=stride, padding=1)


def _trunk_field(canvas: int = 512) -> torch.Tensor:
    """Channel 0 of C5 of :func:`retinaface_one_face`'s trunk, computed on one channel (fast)."""
    x = torch.ones(1, 1, canvas // 4, canvas // 4)  # stem: constant 1 after conv1 (zero) + bn + maxpool
    for stage, n in enumerate((3, 4, 6, 3), start=1):
        for i in range(n):
            stride = 2 if (i == 0 and stage > 1) else 1
            a = torch.relu(x * _BN)
            b0 = torch.relu(_box(a, stride, 1.0 / 9.0) * _BN)
            if i == 0:  # projection shortcut with zero weights: output = main path
                x = torch.relu(b0 * _BN)
            else:  # identity shortcut, cancelled through channel 1 (centre tap)
                b1 = torch.relu(a * _BN)
                x = torch.relu((b0 - b1) * _BN + x)
    return x[0, 0]


def _ssh_field(g: torch.Tensor) -> torch.Tensor:
    """conv7x7_3 branch of SSH on channel 0: three 3x3 all-ones convs with BN (and ReLU between)."""
    x = g[None, None]
    x = torch.relu(_box(x, 1, 1.0) * _BN)
    x = torch.relu(_box(x, 1, 1.0) * _BN)
    return torch.relu(_box(x, 1, 1.0) * _BN)[0, 0]


# --- RetinaFace: exactly one centred detection ---------------------------------------------------------
@torch.no_grad()
def retinaface_one_face(box_fraction: float = 0.45) -> RetinaFaceNet:
    """A RetinaFaceNet that detects one face, centred in the 512 canvas, ``box_fraction`` of its side.

    The stem ignores the image (zero weights, constant BN bias); every bottleneck applies a 3x3 box
    filter to channel 0 (the residual is cancelled through a second channel), so zero padding turns
    the constant into a field that peaks at the centre of the stride-32 map. The FPN keeps only the
    top of the field, SSH smooths it three more times, and the class head thresholds it so that only
    the peak cell and its neighbours pass 0.7; NMS keeps one box.
    """
    net = RetinaFaceNet().eval()
    _zero_params(net)
    body = net.body
    body.bn1.bias[0] = 1.0
    for k in range(1, 5):
        for b in getattr(body, f"layer{k}"):
            b.conv1.weight[0, 0, 0, 0] = 1.0
            b.conv1.weight[1, 0, 0, 0] = 1.0
            b.conv2.weight[0, 0] = 1.0 / 9.0
            b.conv2.weight[1, 1, 1, 1] = 1.0
            b.conv3.weight[0, 0, 0, 0] = 1.0
            if b.downsample is None:
                b.conv3.weight[0, 1, 0, 0] = -1.0  # cancel the identity shortcut: output = box(x)
    f = _trunk_field()
    net.fpn.output3[0].weight[0, 0, 0, 0] = 1.0
    beta = -0.999 * float((f * _BN).max())
    net.fpn.output3[1].bias[0] = beta  # keep the top of the field
    for conv in (net.ssh3.conv5X5_1, net.ssh3.conv7X7_2, net.ssh3.conv7x7_3):
        conv[0].weight[0, 0] = 1.0
    ch = 128 + 64  # first channel of the conv7x7_3 branch in the SSH output
    h = _ssh_field(torch.relu(f * _BN + beta))
    n = h.shape[0]
    peak = int(torch.argmax(h))
    pi, pj = divmod(peak, n)
    hmax = float(h[pi, pj])
    far = h.clone()
    far[max(0, pi - 1):pi + 2, max(0, pj - 1):pj + 2] = -math.inf
    thr = (hmax + float(far.max())) / 2.0
    k = 20.0 / max(hmax - thr, 1e-12)
    for lvl in range(3):
        head = net.ClassHead[lvl].conv1x1
        head.bias.copy_(torch.tensor([8.0, -8.0, 8.0, -8.0]))  # background everywhere ...
    head = net.ClassHead[2].conv1x1
    head.bias[1] = -k * thr  # ... except the stride-32, 256-px anchor near the field's peak
    head.weight[1, ch, 0, 0] = k
    head.bias[0] = 0.0
    # box of that anchor: centred in the canvas, box_fraction of it (prior side 256/512 = 0.5)
    prior_c = (pi + 0.5) * 32 / 512, (pj + 0.5) * 32 / 512
    bb = net.BboxHead[2].conv1x1
    bb.bias[0] = (0.5 - prior_c[1]) / (0.1 * 0.5)
    bb.bias[1] = (0.5 - prior_c[0]) / (0.1 * 0.5)
    bb.bias[2] = bb.bias[3] = math.log(box_fraction / 0.5) / 0.2
    # five landmarks of a frontal face inside that box
    pts = np.array([[-0.2, -0.1], [0.2, -0.1], [0.0, 0.05], [-0.16, 0.22], [0.16, 0.22]]) * box_fraction
    pts = pts + np.array([0.5 - prior_c[1], 0.5 - prior_c[0]])
    net.LandmarkHead[2].conv1x1.bias[:10] = torch.from_numpy((pts / (0.1 * 0.5)).reshape(-1).astype(np.float32))
    return net


# --- 106-point landmark net: a fixed face layout --------------------------------------------------------
def synthetic_layout106() -> np.ndarray:
    """(106, 2) face layout in unit box coordinates (u right, v down), bbox exactly [0, 1]^2."""
    p = np.zeros((106, 2))
    th = np.linspace(math.pi, 0.0, 33)
    p[0:33] = np.stack([0.5 + 0.5 * np.cos(th), 0.3 + 0.7 * np.sin(th)], 1)  # jaw, chin at v = 1
    p[33:42] = np.stack([np.linspace(0.10, 0.42, 9), 0.06 - 0.06 * np.sin(np.linspace(0, math.pi, 9))], 1)
    p[42:51] = np.stack([np.linspace(0.58, 0.90, 9), 0.06 - 0.06 * np.sin(np.linspace(0, math.pi, 9))], 1)
    p[51:55] = np.stack([np.full(4, 0.5), np.linspace(0.32, 0.60, 4)], 1)  # bridge, 54 = tip
    p[55:57] = [[0.45, 0.55], [0.55, 0.55]]
    p[57:64] = np.stack([np.linspace(0.40, 0.60, 7), np.full(7, 0.66)], 1)
    p[64:66] = [[0.42, 0.62], [0.58, 0.62]]
    ring = np.linspace(0, 2 * math.pi, 8, endpoint=False)
    p[66:74] = np.stack([0.30 + 0.08 * np.cos(ring), 0.35 + 0.03 * np.sin(ring)], 1)
    p[74] = [0.30, 0.35]
    p[75:83] = np.stack([0.70 + 0.08 * np.cos(ring), 0.35 + 0.03 * np.sin(ring)], 1)
    p[83] = [0.70, 0.35]
    ring12 = np.linspace(math.pi, 3 * math.pi, 12, endpoint=False)
    p[84:96] = np.stack([0.5 + 0.17 * np.cos(ring12), 0.80 + 0.06 * np.sin(ring12)], 1)  # 84 left, 90 right
    p[96:104] = np.stack([0.5 + 0.10 * np.cos(ring), 0.80 + 0.02 * np.sin(ring)], 1)
    p[104:106] = [[0.30, 0.35], [0.70, 0.35]]
    return p


def _region_taps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 conv taps whose output on a constant-1 14x14 map (zero padded) is a[row class] + b[col class].

    Row classes: top (row 0), middle, bottom (row 13); the value of a class is the sum of the taps
    that stay inside the map: top excludes kernel row 0, bottom excludes kernel row 2.
    """
    m = np.array([[0, 1, 1], [1, 1, 1], [1, 1, 0]], np.float64)  # class x kernel-row inclusion
    target = a[:, None] + b[None, :]  # (row class, col class)
    # target = M W M^T  ->  W = M^-1 target M^-T
    mi = np.linalg.inv(m)
    return mi @ target @ mi.T


def _class_logits(t: float, n: int = 14) -> np.ndarray:
    """Logits of the 3 classes (first, middle, last index) whose expectation over 0..n-1 is t."""
    mid = (n - 1) / 2.0
    counts = np.array([1.0, n - 2.0, 1.0])
    t = float(np.clip(t, 0.05, n - 1.05))
    if t <= mid:
        pm = t / mid
        p = np.array([1 - pm, pm, 1e-9])
    else:
        pl = (t - mid) / (n - 1 - mid)
        p = np.array([1e-9, 1 - pl, pl])
    # E = p_first * 0 + p_mid * mid + p_last * (n-1); the middle class spreads evenly over n-2 cells
    return np.log(np.maximum(p, 1e-9) / counts)


@torch.no_grad()
def landmark_net_fixed(layout: np.ndarray | None = None, margin: float = 1.35) -> LargeBaseNet:
    """A LargeBaseNet whose output is a fixed 106-point layout, independent of the input.

    The layout (unit box) is placed so that its bbox, expanded by ``margin``, is the crop: the
    seed's second pass then crops the same square again (a fixed point).
    """
    layout = synthetic_layout106() if layout is None else np.asarray(layout, np.float64)
    net = LargeBaseNet().eval()
    _zero_params(net)
    net.block18[1].bias[0] = 1.0  # constant feature map (block18's conv has zero weights)
    side = 224.0 / margin
    off = (224.0 - side) / 2.0
    for k in range(layout.shape[0]):
        x_px = off + layout[k, 0] * side
        y_px = off + layout[k, 1] * side
        # transposed soft-argmax: x = 16 * E[row], y = 16 * E[col]
        a = _class_logits(x_px / 16.0)
        b = _class_logits(y_px / 16.0)
        net.block19.weight[k, 0] = torch.from_numpy(_region_taps(a, b).astype(np.float32))
    return net


# --- reconstruction net -------------------------------------------------------------------------------
@torch.no_grad()
def recon_net_synthetic(backbone: str = "resnet50", seed: int = 0,
                        angles=(0.05, 0.12, -0.04)) -> ReconNet:
    """ReconNet with a random trunk (residual branches' last BN zeroed: bounded activations) and
    heads that output fixed small coefficients: identity/expression/albedo noise, a small pose."""
    torch.manual_seed(seed)
    net = ReconNet(backbone).eval()
    for m in net.backbone.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.zero_()
            m.running_var.fill_(1)
    if backbone == "resnet50":
        for name, m in net.backbone.named_modules():
            if name.endswith("bn3"):
                m.weight.zero_()
    g = torch.Generator().manual_seed(seed + 1)
    sizes = (80, 64, 80, 3, 27, 2, 1)
    for i, (head, c) in enumerate(zip(net.final_layers, sizes)):
        head.weight.zero_()
        head.bias.copy_(torch.randn(c, generator=g) * 0.3)
    net.final_layers[3].bias.copy_(torch.tensor(angles, dtype=torch.float32))
    net.final_layers[4].bias.copy_(torch.randn(27, generator=g) * 0.05)
    net.final_layers[5].bias.zero_()
    net.final_layers[6].bias.zero_()
    return net


# --- face model ---------------------------------------------------------------------------------------
def synthetic_lm68() -> np.ndarray:
    """(68, 3) float32 standard landmarks whose 5-point template equals TEMPLATE_5."""
    t = TEMPLATE_5.astype(np.float64)
    p = np.zeros((68, 3))
    th = np.linspace(math.pi, 2 * math.pi, 17)
    p[0:17, 0] = 0.70 * np.cos(th)
    p[0:17, 1] = 0.25 + 1.1 * np.sin(th)
    p[17:22, 0] = np.linspace(-0.55, -0.12, 5)
    p[22:27, 0] = np.linspace(0.12, 0.55, 5)
    p[17:27, 1] = 0.45
    p[27:31, 0] = 0.0
    p[27:31, 1] = np.linspace(0.30, t[2, 1], 4)
    p[30] = t[2]
    p[31:36, 0] = np.linspace(-0.12, 0.12, 5)
    p[31:36, 1] = -0.12
    for base, c in ((36, t[0]), (42, t[1])):
        p[base + 0] = c + [-0.12, 0, 0]
        p[base + 3] = c + [0.12, 0, 0]
        p[base + 1] = c + [-0.04, 0.04, 0]
        p[base + 2] = c + [0.04, 0.04, 0]
        p[base + 4] = c + [0.04, -0.04, 0]
        p[base + 5] = c + [-0.04, -0.04, 0]
    ang = np.linspace(math.pi, 3 * math.pi, 12, endpoint=False)
    p[48:60, 0] = 0.25 * np.cos(ang)
    p[48:60, 1] = -0.381 + 0.08 * np.sin(-ang)
    p[48] = t[3]
    p[54] = t[4]
    ang8 = np.linspace(math.pi, 3 * math.pi, 8, endpoint=False)
    p[60:68, 0] = 0.15 * np.cos(ang8)
    p[60:68, 1] = -0.381 + 0.03 * np.sin(-ang8)
    z = _depth(p[:, 0], p[:, 1])
    for i in range(68):
        if i not in (30, 48, 54, 36, 39, 42, 45):
            p[i, 2] = z[i]
    return p.astype(np.float32)


def _depth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth face-like height field (model units, z toward the viewer)."""
    r = 1.0 - (x / 0.9) ** 2 - ((y + 0.05) / 1.05) ** 2
    base = 0.45 * np.sqrt(np.clip(r, 0.0, None)) - 0.3
    nose = 0.33 * np.exp(-((x / 0.09) ** 2 + ((y + 0.0) / 0.22) ** 2))
    return base + nose


def _in_ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def _poly_features(x: np.ndarray, y: np.ndarray, degree: int = 3) -> np.ndarray:
    cols = [x ** i * y ** j for i in range(degree + 1) for j in range(degree + 1 - i)]
    return np.stack(cols, 1)


def synthetic_face_model(spacing: float = 0.035, seed: int = 0) -> dict:
    """The documented face_model dict (docs/ddfa_v3.md, section 6) for a small synthetic face mesh.

    Frame: x right, y up, z toward the viewer, model units like the real model (eye distance ~0.62).
    Triangles are counter-clockwise seen from +z (the seed's normal formula points outward).
    """
    rng = np.random.default_rng(seed)
    xs = np.arange(-0.80, 0.80 + 1e-9, spacing)
    ys = np.arange(-1.02, 0.86 + 1e-9, spacing)
    gx, gy = np.meshgrid(xs, ys)  # row i = y index (up), col j = x index (right)
    inside = _in_ellipse(gx, gy, 0.0, -0.08, 0.80, 0.94)
    vid = -np.ones(gx.shape, np.int64)
    vid[inside] = np.arange(int(inside.sum()))
    x, y = gx[inside], gy[inside]
    n = x.size
    z = _depth(x, y)
    tris = []
    for i in range(gx.shape[0] - 1):
        for j in range(gx.shape[1] - 1):
            a, b, c, d = vid[i, j], vid[i, j + 1], vid[i + 1, j], vid[i + 1, j + 1]
            if a >= 0 and b >= 0 and d >= 0:
                tris.append((a, b, d))  # CCW with x right, y up
            if a >= 0 and d >= 0 and c >= 0:
                tris.append((a, d, c))
    tri = np.asarray(tris, np.int64)
    m = tri.shape[0]
    adj: list[list[int]] = [[] for _ in range(n)]
    for t_id, t in enumerate(tri):
        for v in t:
            adj[v].append(t_id)
    point_buf = np.full((n, 8), m, np.int64)
    for v, lst in enumerate(adj):
        point_buf[v, :min(8, len(lst))] = lst[:8]
    u = np.stack([x, y, z], 1)
    uv = np.stack([(x - xs[0]) / (xs[-1] - xs[0]), (y - ys[0]) / (ys[-1] - ys[0])], 1)

    # parts (vertex ids): subject's right = image left = -x
    parts_mask = [
        _in_ellipse(x, y, -0.31, 0.29, 0.13, 0.06),  # right eye
        _in_ellipse(x, y, 0.31, 0.29, 0.13, 0.06),  # left eye
        _in_ellipse(x, y, -0.33, 0.45, 0.17, 0.045),  # right brow
        _in_ellipse(x, y, 0.33, 0.45, 0.17, 0.045),  # left brow
        _in_ellipse(x, y, 0.0, 0.05, 0.13, 0.28),  # nose
        _in_ellipse(x, y, 0.0, -0.38, 0.27, 0.10) & (y >= -0.38),  # upper lip
        _in_ellipse(x, y, 0.0, -0.38, 0.27, 0.10) & (y < -0.38),  # lower lip
    ]
    taken = np.zeros(n, bool)
    for pm in parts_mask:
        taken |= pm
    parts_mask.append(~taken | _in_ellipse(x, y, 0.0, 0.05, 0.03, 0.03))  # skin (+ a few shared nose ids)
    annotation = [np.nonzero(pm)[0].astype(np.int64) for pm in parts_mask]
    annotation_tri = [tri[np.all(pm[tri], axis=1)] for pm in parts_mask]

    def nearest(points_xy: np.ndarray) -> np.ndarray:
        d = ((u[None, :, :2] - points_xy[:, None, :]) ** 2).sum(-1)
        return np.argmin(d, axis=1).astype(np.int64)

    lm68 = synthetic_lm68().astype(np.float64)
    ldm68 = nearest(lm68[:, :2])
    th = np.linspace(math.pi, 2 * math.pi, 33)
    jaw33 = np.stack([0.70 * np.cos(th), 0.25 + 1.1 * np.sin(th)], 1)
    inner = lm68[17:, :2]
    extra106 = np.concatenate([inner, inner[:22] + [0.0, 0.02]])
    ldm106 = nearest(np.concatenate([jaw33, extra106]))
    extra134 = np.concatenate([inner, inner[:50] + [0.0, 0.02]])
    ldm134 = nearest(np.concatenate([jaw33, extra134]))
    parallel = []
    for p in jaw33:
        d = np.sqrt(((u[:, :2] - p) ** 2).sum(-1))
        parallel.append(np.nonzero(d < 0.09)[0].astype(np.int64).tolist() or [int(np.argmin(d))])

    feats = _poly_features(x, y)  # (n, 10)
    nf = feats.shape[1]

    def basis(k: int, amp: float, weight: np.ndarray | None = None) -> np.ndarray:
        cols = []
        for _ in range(k):
            w = rng.normal(size=(nf, 3)) * amp / math.sqrt(nf)
            d = feats @ w
            if weight is not None:
                d = d * weight[:, None]
            cols.append(d.reshape(-1))
        return np.stack(cols, 1).astype(np.float32)

    mouth_w = np.exp(-((x / 0.35) ** 2 + ((y + 0.38) / 0.2) ** 2)) + 0.3 * np.exp(-(((np.abs(x) - 0.31) / 0.15) ** 2 + ((y - 0.3) / 0.1) ** 2))
    id_base = basis(80, 0.02)
    exp_base = basis(64, 0.02, mouth_w)
    colour = np.tile(np.array([[205.0, 155.0, 135.0]]), (n, 1))
    lbl = np.zeros(n, np.int64)
    for i, idx in enumerate(annotation):
        lbl[idx] = i + 1
    colour[np.isin(lbl, (1, 2))] = [235, 235, 230]
    colour[np.isin(lbl, (3, 4))] = [90, 60, 45]
    colour[np.isin(lbl, (6, 7))] = [180, 80, 85]
    u_alb = colour.reshape(-1, 1).astype(np.float32)
    alb_base = basis(80, 6.0)
    return {
        "u": u.reshape(-1, 1).astype(np.float32),
        "id": id_base,
        "exp": exp_base,
        "u_alb": u_alb,
        "alb": alb_base,
        "point_buf": point_buf,
        "tri": tri,
        "uv_coords": uv.astype(np.float32),
        "ldm68": ldm68,
        "ldm106": ldm106,
        "ldm134": ldm134,
        "annotation": annotation,
        "annotation_tri": annotation_tri,
        "parallel": parallel,
    }


# --- the whole set ------------------------------------------------------------------------------------
def write_synthetic_assets(directory: str | Path, *, seed: int = 0, backbone: str = "resnet50",
                           num_batches_tracked: bool = True) -> dict[str, Path]:
    """Write the five synthetic asset files into ``directory`` (created if needed).

    Returns ``{constructor argument: path}`` (keys of :data:`ASSET_FILES`), so
    ``DDFAv3(**write_synthetic_assets(d))`` works. With ``backbone="mbnetv3"`` net_recon.pth holds
    the MobileNet-V3 variant. ``num_batches_tracked=False`` omits those BN buffers, like old files.
    """
    from scipy.io import savemat

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = {k: d / v for k, v in ASSET_FILES.items()}

    def sd_of(net: nn.Module) -> dict:
        sd = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
        if not num_batches_tracked:
            sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
        return sd

    torch.save(wrap_net_recon(sd_of(recon_net_synthetic(backbone, seed))), paths["net_recon"])
    torch.save(wrap_large_base_net(sd_of(landmark_net_fixed())), paths["large_base_net"])
    torch.save(wrap_retinaface(sd_of(retinaface_one_face())), paths["retinaface"])
    fm = synthetic_face_model(seed=seed)
    arr = np.empty((), dtype=object)
    arr[()] = fm
    np.save(paths["face_model"], arr, allow_pickle=True)
    savemat(str(paths["similarity_lm3d"]), {"lm": synthetic_lm68()})
    return paths
