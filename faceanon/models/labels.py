"""Visible part-label map of a fitted face: which part (eye, brow, nose, lips, skin) each pixel shows.

Backend-independent: it uses only ``FaceFit.vertices``, ``triangles`` and ``vertex_labels``.
"""

from __future__ import annotations

import math

import numpy as np

from faceanon.types import FaceFit


def visible_label_map(fit: FaceFit, height: int, width: int) -> np.ndarray:
    """Rasterize the whole mesh of ``fit`` (z-buffer: larger z = nearer wins, so occluded parts do
    not show) into an (height, width) image and give every covered pixel the label of the vertex
    with the largest barycentric weight in the visible triangle; 0 (background) elsewhere.

    Only the face's bounding box (clipped to the image) is rasterized, so the cost does not grow
    with the photo's size. Returns (height, width) uint8 with values 0..8.
    """
    from faceanon.raster import rasterize

    height, width = int(height), int(width)
    out = np.zeros((height, width), np.uint8)
    v = np.asarray(fit.vertices, np.float32)
    finite = np.isfinite(v[:, :2]).all(axis=1)
    if not finite.any():
        return out
    x0 = max(0, math.floor(float(v[finite, 0].min())))
    y0 = max(0, math.floor(float(v[finite, 1].min())))
    x1 = min(width, math.ceil(float(v[finite, 0].max())) + 1)
    y1 = min(height, math.ceil(float(v[finite, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return out  # the face lies entirely outside the image
    local = v - np.array([x0, y0, 0], np.float32)
    r = rasterize(local, fit.triangles, y1 - y0, x1 - x0)
    covered = r.tri_id >= 0
    tri = np.asarray(fit.triangles)[r.tri_id[covered]]  # (K, 3) vertex ids
    corner = np.argmax(r.bary[covered], axis=1)
    labels = np.asarray(fit.vertex_labels, np.uint8)[tri[np.arange(len(tri)), corner]]
    out[y0:y1, x0:x1][covered] = labels
    return out
