"""Per-vertex part labels of the no-neck BFM, derived from its 68 landmarks on the mean face.

The 3DDFA-V3 backend ships per-vertex part annotations; the lite model does not, so they are drawn
here once (and cached in the derived BFM file, see :mod:`faceanon.models.bfm`) as 2-D polygons in
the frontal view of the MEAN shape (model x right = image right, model y up), then every vertex
takes the label of the region its (x, y) falls in. Label ids follow ``faceanon.types``:
1 right eye (subject's right = image left = landmarks 36-41), 2 left eye (42-47), 3 right brow
(17-21), 4 left brow (22-26), 5 nose (27-35), 6 upper lip, 7 lower lip, 8 skin.

Eye and lip regions are PRIVACY regions, not iris or vermilion segmentations: they include the
lids, the lash line and a margin for the regressor's landmark error (~5 % of the inter-ocular
distance), so an eye region is the eye polygon extended up toward the lid crease and dilated by a
fraction of the eye width; the lip region is the outer lip polygon dilated by a fraction of the
mouth width and split into upper/lower along the inner-lip midline. All sizes are fractions of the
eye width (``ew``, landmark 36-39 distance on the mean face) or of the mouth width, so they do not
depend on the model's units. Brows are bands around the brow landmarks (which lie along the brow's
upper edge); the nose is the bridge plus the alae. Overlaps are resolved by priority:
eyes > lips > brows > nose > skin.
"""

from __future__ import annotations

import cv2
import numpy as np

#: bump whenever the geometry below changes (it is part of the derived-file cache key)
LABELS_VERSION = 1

RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, NOSE, UPPER_LIP, LOWER_LIP, SKIN = range(1, 9)

# geometry, as fractions of the eye width ew (eyes, brows, nose) or of the mouth width (lips)
EYE_LID_UP = 0.30  # upper lid points moved toward the brow by this fraction of the lid-brow gap
EYE_DILATE = 0.22  # eye region = lid-extended eye polygon dilated by this * ew
BROW_UP = 0.10  # brow band: from brow points + this * ew ...
BROW_DOWN = 0.30  # ... down to brow points - this * ew
NOSE_BRIDGE_HALF = 0.22  # half width of the nose bridge at landmark 27, * ew
NOSE_ALA_OUT = 0.25  # alae extend beyond landmarks 31/35 by this * ew
LIP_DILATE = 0.14  # lip region = outer lip polygon dilated by this * mouth width

_GRID_CELLS_PER_EW = 100.0  # resolution of the 2-D label canvas


def _eye_polygon(lm: np.ndarray, eye: slice, brow: slice) -> np.ndarray:
    """Eye outline (6 points) with its upper lid pulled toward the brow."""
    pts = lm[eye].copy()  # order: outer/inner corner, 2 upper lid points, inner/outer corner, 2 lower
    brow_y = lm[brow, 1].mean()
    for k in (1, 2):  # the two upper-lid points
        pts[k, 1] += EYE_LID_UP * (brow_y - pts[k, 1])
    return pts


def _brow_polygon(lm: np.ndarray, brow: slice, ew: float) -> np.ndarray:
    pts = lm[brow]
    upper = pts + [0.0, BROW_UP * ew]
    lower = pts[::-1] - [0.0, BROW_DOWN * ew]
    return np.concatenate([upper, lower])


def _nose_polygon(lm: np.ndarray, ew: float) -> np.ndarray:
    top, tip = lm[27], lm[30]
    half = NOSE_BRIDGE_HALF * ew
    out = NOSE_ALA_OUT * ew
    left_ala, right_ala = lm[31], lm[35]
    return np.array([
        [top[0] - half, top[1]],
        [top[0] + half, top[1]],
        [right_ala[0] + out, tip[1]],
        [right_ala[0] + out, right_ala[1]],
        lm[34], lm[33], lm[32],
        [left_ala[0] - out, left_ala[1]],
        [left_ala[0] - out, tip[1]],
    ])


def _lip_midline(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x-sorted (x, y) samples of the line between the lips (mid of inner upper/lower points)."""
    inner_up = lm[[60, 61, 62, 63, 64]]
    inner_lo = lm[[60, 67, 66, 65, 64]]
    mid = (inner_up + inner_lo) / 2
    mid = np.concatenate([lm[[48]], mid, lm[[54]]])
    order = np.argsort(mid[:, 0])
    return mid[order, 0], mid[order, 1]


def compute_vertex_labels(mean_vertices: np.ndarray, kp68: np.ndarray) -> np.ndarray:
    """Part label of every vertex.

    mean_vertices: (N, 3) float mean face in the model frame (x right, y up); kp68: (68,) int
    vertex ids of the iBUG-68 landmarks. Returns (N,) uint8 in 1..8 (no vertex is background).
    """
    v = np.asarray(mean_vertices, np.float64)[:, :2]
    lm = v[np.asarray(kp68)]
    ew = float(np.mean([np.linalg.norm(lm[39] - lm[36]), np.linalg.norm(lm[45] - lm[42])]))
    mw = float(np.linalg.norm(lm[54] - lm[48]))

    # a canvas over the vertices' bounding box, image-like rows (row 0 = top = max y)
    cell = ew / _GRID_CELLS_PER_EW
    margin = 2 * ew
    x0, y1 = v[:, 0].min() - margin, v[:, 1].max() + margin
    width = int(np.ceil((v[:, 0].max() + margin - x0) / cell)) + 1
    height = int(np.ceil((y1 - (v[:, 1].min() - margin)) / cell)) + 1

    def to_px(p: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(p)
        return np.stack([(p[:, 0] - x0) / cell, (y1 - p[:, 1]) / cell], axis=1)

    def region(poly: np.ndarray, dilate: float = 0.0) -> np.ndarray:
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [np.round(to_px(poly)).astype(np.int32)], 1)
        r = int(round(dilate / cell))
        if r > 0:
            mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        return mask.astype(bool)

    canvas = np.full((height, width), SKIN, np.uint8)
    canvas[region(_nose_polygon(lm, ew))] = NOSE
    canvas[region(_brow_polygon(lm, slice(17, 22), ew))] = RIGHT_BROW
    canvas[region(_brow_polygon(lm, slice(22, 27), ew))] = LEFT_BROW
    lips = region(lm[48:60], LIP_DILATE * mw)
    canvas[lips] = LOWER_LIP
    mid_x, mid_y = _lip_midline(lm)
    rows, cols = np.nonzero(lips)
    px_y = y1 - rows * cell
    upper = px_y > np.interp(x0 + cols * cell, mid_x, mid_y)
    canvas[rows[upper], cols[upper]] = UPPER_LIP
    canvas[region(_eye_polygon(lm, slice(36, 42), slice(17, 22)), EYE_DILATE * ew)] = RIGHT_EYE
    canvas[region(_eye_polygon(lm, slice(42, 48), slice(22, 27)), EYE_DILATE * ew)] = LEFT_EYE

    px = np.round(to_px(v)).astype(np.int64)
    return canvas[px[:, 1], px[:, 0]].astype(np.uint8)
