"""3DDFA_V2's mb05 regressor: MobileNet-V1 with widen factor 0.5 and 62 outputs (docs/lite_model.md, section 1).

Module names equal the checkpoint's keys (after stripping ``module.`` and renaming
``fc_param`` -> ``fc``) so that the checkpoint loads strictly. The checkpoint's auxiliary
68-landmark head ``fc_lm`` (136 outputs) is loaded into an unused ``fc_lm`` layer; it is not part of
:meth:`MobileNetV1.forward` and serves only as an independent self-check (``forward_lm``).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from faceanon.errors import CheckpointError

# (name, Cin, Cout, stride of the depthwise conv)
BLOCKS = (
    ("dw2_1", 16, 32, 1),
    ("dw2_2", 32, 64, 2),
    ("dw3_1", 64, 64, 1),
    ("dw3_2", 64, 128, 2),
    ("dw4_1", 128, 128, 1),
    ("dw4_2", 128, 256, 2),
    ("dw5_1", 256, 256, 1),
    ("dw5_2", 256, 256, 1),
    ("dw5_3", 256, 256, 1),
    ("dw5_4", 256, 256, 1),
    ("dw5_5", 256, 256, 1),
    ("dw5_6", 256, 512, 2),
    ("dw6", 512, 512, 1),
)
NUM_PARAMS = 62
INPUT_SIZE = 120


class DepthWiseBlock(nn.Module):
    """3x3 depthwise conv -> BN -> ReLU -> 1x1 pointwise conv -> BN -> ReLU (no biases)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False)
        self.bn_dw = nn.BatchNorm2d(cin)
        self.conv_sep = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn_sep = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn_dw(self.conv_dw(x)))
        return self.relu(self.bn_sep(self.conv_sep(x)))


class MobileNetV1(nn.Module):
    """mb05: (B, 3, 120, 120) float32 normalised BGR -> (B, 62) normalised 3DMM parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        for name, cin, cout, stride in BLOCKS:
            self.add_module(name, DepthWiseBlock(cin, cout, stride))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, NUM_PARAMS)
        self.fc_lm = nn.Linear(512, 136)  # unused auxiliary head of the checkpoint (see module doc)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 120, 120) -> (B, 512) pooled features."""
        x = self.relu(self.bn1(self.conv1(x)))
        for name, *_ in BLOCKS:
            x = getattr(self, name)(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    def forward_lm(self, x: torch.Tensor) -> torch.Tensor:
        """The auxiliary head: (B, 136) = 68 x-values then 68 y-values, ~[-1, 1]
        (``pixel_in_120_crop ~= 60.8 * v + 60.1``, y down; docs/lite_model.md, section 1.6)."""
        return self.fc_lm(self.features(x))


def _checkpoint_state_dict(path: Path) -> "OrderedDict[str, torch.Tensor]":
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint not found: {path}", hint="run `faceanon assets download`") from exc
    except Exception as exc:  # corrupt file, unsafe pickle content...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first}",
                              hint="run `faceanon assets verify` and re-download it") from exc
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in obj.items():
        if key.startswith("module."):
            key = key[len("module."):]
        if key.startswith("fc_param."):
            key = "fc." + key[len("fc_param."):]
        out[key] = value
    return out


def load_mb05(path: str | Path) -> MobileNetV1:
    """Build mb05 and load ``3ddfa_v2/mb05_120x120.pth`` strictly (eval mode, CPU, float32).

    Raises :class:`CheckpointError` naming the missing, unexpected or mis-shaped keys.
    """
    path = Path(path)
    state = _checkpoint_state_dict(path)
    model = MobileNetV1()
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    bad_shape = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or bad_shape:
        parts = []
        if missing:
            parts.append("missing keys: " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected keys: " + ", ".join(unexpected))
        if bad_shape:
            parts.append("wrong shapes: " + ", ".join(bad_shape))
        raise CheckpointError(f"{path} does not match the mb05 network ({'; '.join(parts)})",
                              hint="the file is not 3DDFA_V2's mb05_120x120.pth; re-download it")
    model.load_state_dict(state, strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
