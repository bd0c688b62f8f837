"""Coefficient regressor ``net_recon`` (docs/ddfa_v3.md, section 5): backbone + seven 1x1-conv heads.

Output (B, 257) = [id 80 | exp 64 | albedo 80 | angles 3 (pitch, yaw, roll; radians) |
SH gamma 27 | tx, ty | tz]. Input: the aligned 224x224 RGB crop / 255, no mean/std.

Backbones: ResNet-50 (``resnet50``, 2048 features) and the MobileNet-V3-large layout of the
``mbnetv3`` option (``features.*`` / ``conv.*``, 960 features), both pooled to (B, C, 1, 1) and not
flattened before the heads.
"""

from __future__ import annotations

import torch
from torch import nn

from .resnet import ResNet50Trunk

__all__ = ["ReconNet", "MobileNetV3LargeTrunk", "COEFF_SLICES", "split_coeffs", "HEAD_SIZES"]

HEAD_SIZES = (80, 64, 80, 3, 27, 2, 1)
COEFF_SLICES = {
    "id": slice(0, 80),
    "exp": slice(80, 144),
    "alb": slice(144, 224),
    "angle": slice(224, 227),
    "gamma": slice(227, 254),
    "trans_xy": slice(254, 256),
    "trans_z": slice(256, 257),
}


def split_coeffs(c: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, 257) -> dict id, exp, alb, angle, gamma, trans (B, 3)."""
    d = {k: c[:, s] for k, s in COEFF_SLICES.items() if not k.startswith("trans")}
    d["trans"] = c[:, 254:257]
    return d


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class _SE(nn.Module):
    def __init__(self, ch: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = _make_divisible(ch // reduction, 8)
        self.fc = nn.Sequential(nn.Linear(ch, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, ch), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        y = self.fc(x.mean(dim=(2, 3))).view(b, c, 1, 1)
        return x * y


class _MBBlock(nn.Module):
    def __init__(self, inp: int, hidden: int, out: int, k: int, stride: int, se: bool, hs: bool) -> None:
        super().__init__()
        self.identity = stride == 1 and inp == out
        act = nn.Hardswish if hs else nn.ReLU
        if inp == hidden:
            layers = [
                nn.Conv2d(hidden, hidden, k, stride, (k - 1) // 2, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden), act(), _SE(hidden) if se else nn.Identity(),
                nn.Conv2d(hidden, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out),
            ]
        else:
            layers = [
                nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), act(),
                nn.Conv2d(hidden, hidden, k, stride, (k - 1) // 2, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden), _SE(hidden) if se else nn.Identity(), act(),
                nn.Conv2d(hidden, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out),
            ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.identity else self.conv(x)


# kernel, expansion, out channels, squeeze-excite, hard-swish, stride
_MBV3_LARGE = (
    (3, 1, 16, 0, 0, 1), (3, 4, 24, 0, 0, 2), (3, 3, 24, 0, 0, 1),
    (5, 3, 40, 1, 0, 2), (5, 3, 40, 1, 0, 1), (5, 3, 40, 1, 0, 1),
    (3, 6, 80, 0, 1, 2), (3, 2.5, 80, 0, 1, 1), (3, 2.3, 80, 0, 1, 1), (3, 2.3, 80, 0, 1, 1),
    (3, 6, 112, 1, 1, 1), (3, 6, 112, 1, 1, 1),
    (5, 6, 160, 1, 1, 2), (5, 6, 160, 1, 1, 1), (5, 6, 160, 1, 1, 1),
)


class MobileNetV3LargeTrunk(nn.Module):
    """MobileNet-V3-large feature extractor -> (B, 960, 1, 1) (no classifier)."""

    def __init__(self) -> None:
        super().__init__()
        c = _make_divisible(16)
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.Hardswish())]
        for k, t, out, se, hs, s in _MBV3_LARGE:
            o = _make_divisible(out)
            hidden = _make_divisible(c * t)
            layers.append(_MBBlock(c, hidden, o, k, s, bool(se), bool(hs)))
            c = o
        self.features = nn.Sequential(*layers)
        exp = _make_divisible(c * 6)
        self.conv = nn.Sequential(nn.Conv2d(c, exp, 1, 1, 0, bias=False), nn.BatchNorm2d(exp), nn.Hardswish())
        self.out_channels = exp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(self.conv(self.features(x)), 1)


class ReconNet(nn.Module):
    """forward(x (B,3,224,224) in [0,1]) -> (B, 257) coefficients."""

    def __init__(self, backbone: str = "resnet50") -> None:
        super().__init__()
        if backbone == "resnet50":
            bb: nn.Module = ResNet50Trunk()
            feat = 2048
        elif backbone == "mbnetv3":
            bb = MobileNetV3LargeTrunk()
            feat = 960
        else:
            raise ValueError(f"backbone must be 'resnet50' or 'mbnetv3', got {backbone!r}")
        self.backbone_name = backbone
        self.backbone = bb
        self.final_layers = nn.ModuleList([nn.Conv2d(feat, c, 1, bias=True) for c in HEAD_SIZES])
        for m in self.final_layers:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.backbone_name == "resnet50":
            return torch.nn.functional.adaptive_avg_pool2d(self.backbone(x)[-1], 1)
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return torch.cat([h(f) for h in self.final_layers], dim=1).flatten(1)
