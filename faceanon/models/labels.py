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
    # corner of the largest barycentric weight (first one on ties, like argmax), as uint8 planes:
    # cheaper than fancy-indexing (K, 3) copies on multi-megapixel faces
    b = r.bary
    corner = (b[..., 1] > b[..., 0]).astype(np.uint8)
    corner[b[..., 2] > np.maximum(b[..., 0], b[..., 1])] = 2
    corner_labels = np.asarray(fit.vertex_labels, np.uint8)[np.asarray(fit.triangles)]  # (M, 3)
    tid = r.tri_id
    face = corner_labels[tid, corner]  # tid -1 reads the last triangle: masked just below
    face[tid < 0] = 0
    out[y0:y1, x0:x1] = face
    return out
