"""Strict checkpoint loading for the three 3DDFA-V3 networks.

Files and their wrapping (docs/ddfa_v3.md, section 1):

* ``net_recon.pth`` / ``net_recon_mbnet.pth``: a dict, state_dict under ``'net_recon'``;
* ``large_base_net.pth``: a dict, state_dict under ``'state_dict'``, keys possibly prefixed
  ``module.`` (stripped);
* ``retinaface_resnet50_2020-07-20_old_torch.pth``: a plain state_dict.

Every file is read with ``torch.load(path, map_location="cpu", weights_only=True)`` and loaded
strictly. The only tolerated difference is absent BatchNorm ``num_batches_tracked`` buffers (old
checkpoints lack them; they are unused in eval mode). Anything else - unreadable or truncated file,
wrong wrapping, missing or unexpected keys, a shape mismatch - raises
:class:`ddfa_v3.errors.CheckpointError` with a one-line message naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError

__all__ = [
    "read_checkpoint",
    "extract_state_dict",
    "load_strict",
    "load_net_recon",
    "load_large_base_net",
    "load_retinaface",
    "detect_recon_backbone",
]

_HINT = "the file is truncated or is not the expected model: delete it and download it again"
_SHOW = 5


def _short(keys: list[str]) -> str:
    head = ", ".join(keys[:_SHOW])
    more = f", ... (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return f"{len(keys)} [{head}{more}]"


def read_checkpoint(path: str | Path):
    """torch.load with weights_only=True on CPU; any failure becomes a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found", "run `faceanon assets download --model 3ddfa-v3`")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, forbidden global...
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {reason}", _HINT) from None


def extract_state_dict(obj, path: str | Path, key: str | None, strip_prefix: str | None = None) -> dict:
    """Unwrap ``obj[key]`` (or ``obj`` itself when key is None) and strip an optional key prefix."""
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            found = sorted(map(str, obj.keys()))[:_SHOW] if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(f"checkpoint {path} has no '{key}' entry (found {found})", _HINT)
        obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {path}: expected a state_dict of tensors"
                              + (f" under '{key}'" if key else ""), _HINT)
    sd = dict(obj)
    if strip_prefix:
        sd = {(k[len(strip_prefix):] if k.startswith(strip_prefix) else k): v for k, v in sd.items()}
    return sd


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], path: str | Path, what: str) -> nn.Module:
    """Load ``state_dict`` into ``module`` strictly (absent num_batches_tracked tolerated)."""
    expected = module.state_dict()
    sd = dict(state_dict)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    tolerated = [k for k in missing if k.endswith("num_batches_tracked")]
    missing = [k for k in missing if k not in tolerated]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_short(unexpected)}")
        raise CheckpointError(f"checkpoint {path} does not match the {what} network: " + "; ".join(parts), _HINT)
    bad = [f"{k} {tuple(sd[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
           if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if bad:
        raise CheckpointError(f"checkpoint {path} does not match the {what} network: shape mismatch "
                              f"{_short(bad)}", _HINT)
    for k in tolerated:
        sd[k] = torch.zeros((), dtype=torch.long)
    try:
        module.load_state_dict(sd, strict=True)
    except Exception as exc:  # pragma: no cover - all cases are caught above
        raise CheckpointError(f"checkpoint {path}: {' '.join(str(exc).split())[:300]}", _HINT) from None
    return module.eval()


def detect_recon_backbone(state_dict: Mapping[str, torch.Tensor]) -> str:
    """'mbnetv3' when the state_dict has the MobileNet-V3 layout, else 'resnet50'."""
    return "mbnetv3" if "backbone.features.0.0.weight" in state_dict else "resnet50"


def load_net_recon(path: str | Path, backbone: str = "auto"):
    """net_recon(.pth) -> ReconNet in eval mode. backbone: 'auto', 'resnet50' or 'mbnetv3'."""
    from .recon_net import ReconNet

    sd = extract_state_dict(read_checkpoint(path), path, "net_recon")
    if backbone == "auto":
        backbone = detect_recon_backbone(sd)
    return load_strict(ReconNet(backbone), sd, path, f"net_recon ({backbone})")


def load_large_base_net(path: str | Path):
    """large_base_net.pth -> LargeBaseNet in eval mode (``module.`` prefix stripped)."""
    from .landmark106 import LargeBaseNet

    sd = extract_state_dict(read_checkpoint(path), path, "state_dict", strip_prefix="module.")
    return load_strict(LargeBaseNet(), sd, path, "large_base_net (106 landmarks)")


def load_retinaface(path: str | Path):
    """retinaface_resnet50_*.pth (plain state_dict) -> RetinaFaceNet in eval mode."""
    from .retinaface import RetinaFaceNet

    sd = extract_state_dict(read_checkpoint(path), path, None)
    return load_strict(RetinaFaceNet(), sd, path, "RetinaFace-ResNet50")
