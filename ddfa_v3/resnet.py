"""ResNet-50 trunk (v1.5: the stride sits in the 3x3 conv) with torchvision-compatible key names.

Written from the layout of docs/ddfa_v3.md (sections 2 and 5): ``conv1``, ``bn1``, ``relu``,
``maxpool``, ``layer1..4`` of bottleneck blocks (``conv1/bn1/conv2/bn2/conv3/bn3`` and, on the first
block of each stage, ``downsample.{0,1}``). There is no ``fc``: the RetinaFace body uses the stage
outputs and the reconstruction net pools the last one itself.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Bottleneck", "ResNet50Trunk"]


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride) -> 1x1 expand (x4), plus identity or projection shortcut."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


class ResNet50Trunk(nn.Module):
    """ResNet-50 without ``avgpool``/``fc``.

    ``forward(x)`` with x (B, 3, H, W) float32 returns the stage outputs
    ``[layer1 (256 ch, /4), layer2 (512, /8), layer3 (1024, /16), layer4 (2048, /32)]``.
    """

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 6, 3)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_ch = 64
        for k, (n, width) in enumerate(zip(layers, (64, 128, 256, 512)), start=1):
            blocks = []
            for i in range(n):
                stride = 2 if (i == 0 and k > 1) else 1
                blocks.append(Bottleneck(in_ch, width, stride))
                in_ch = width * Bottleneck.expansion
            setattr(self, f"layer{k}", nn.Sequential(*blocks))
        self.out_channels = in_ch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for k in range(1, 5):
            x = getattr(self, f"layer{k}")(x)
            outs.append(x)
        return outs
