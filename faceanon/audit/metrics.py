"""Pixel metrics of the audit: how much of the original survives in the anonymized composite.

Definitions (all on the original's pixel grid, the composite being the same size):

* ΔE per pixel: CIEDE2000 between the original's and the composite's sRGB colour (see :mod:`.color`).
* **residual** of a region (eyes = labels 1, 2; mouth = labels 6, 7 of the face's
  ``seg_visible_labels_full``): the fraction of the region's pixels whose ΔE is below ``tolerance``
  (default 2.0, about a just-noticeable difference). 1.0 means the region was left untouched, 0.0 that
  every pixel changed visibly. A lossy re-encode (JPEG in, JPEG out) moves some untouched pixels above
  ΔE 2, so the residual of an untouched region on JPEG is a little below 1; the mean ΔE is given too.
* **skin ΔE** (label 8): mean and median ΔE over the skin pixels - the pipeline is meant to keep the
  skin, so small is good here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Tuple

import numpy as np

from faceanon.audit.color import ciede2000, srgb_to_lab

EYE = (1, 2)
MOUTH = (6, 7)
SKIN = (8,)
DEFAULT_TOLERANCE = 2.0


@dataclass
class RegionStats:
    """ΔE statistics over one region. pixels = 0 gives NaN statistics."""

    pixels: int
    residual: float
    de_mean: float
    de_median: float


def _nan_stats() -> RegionStats:
    return RegionStats(0, float("nan"), float("nan"), float("nan"))


def region_delta_e(original: np.ndarray, composite: np.ndarray, labels: np.ndarray,
                   regions: Dict[str, Iterable[int]], tolerance: float = DEFAULT_TOLERANCE) -> Dict[str, RegionStats]:
    """ΔE statistics of each named region.

    original, composite: (H, W, 3) uint8 RGB of the same size; labels: (H, W) uint8 part labels 0..8;
    regions: name -> label values; tolerance: ΔE below which a pixel counts as surviving.
    Returns name -> :class:`RegionStats`.
    """
    original = np.asarray(original)
    composite = np.asarray(composite)
    labels = np.asarray(labels)
    if original.ndim != 3 or original.shape[2] != 3 or original.dtype != np.uint8:
        raise ValueError(f"original: expected (H, W, 3) uint8, got {original.shape} {original.dtype}")
    if composite.shape != original.shape or composite.dtype != np.uint8:
        raise ValueError(f"composite: expected {original.shape} uint8 like the original, got {composite.shape} {composite.dtype}")
    if labels.shape != original.shape[:2]:
        raise ValueError(f"labels: expected {original.shape[:2]} like the image, got {labels.shape}")
    wanted = sorted({int(v) for vals in regions.values() for v in vals})
    mask = np.isin(labels, wanted)
    out: Dict[str, RegionStats] = {}
    if not mask.any():
        return {name: _nan_stats() for name in regions}
    lab_px = labels[mask]
    de = ciede2000(srgb_to_lab(original[mask]), srgb_to_lab(composite[mask]))
    for name, vals in regions.items():
        sel = np.isin(lab_px, list(vals))
        n = int(sel.sum())
        if n == 0:
            out[name] = _nan_stats()
            continue
        d = de[sel]
        out[name] = RegionStats(n, float(np.mean(d < tolerance)), float(d.mean()), float(np.median(d)))
    return out


def face_region_stats(original: np.ndarray, composite: np.ndarray, labels: np.ndarray,
                      tolerance: float = DEFAULT_TOLERANCE) -> Tuple[RegionStats, RegionStats, RegionStats]:
    """(eyes, mouth, skin) :class:`RegionStats` of one face."""
    r = region_delta_e(original, composite, labels, {"eye": EYE, "mouth": MOUTH, "skin": SKIN}, tolerance)
    return r["eye"], r["mouth"], r["skin"]
