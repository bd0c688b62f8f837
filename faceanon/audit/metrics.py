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

Added for pose-dependent audits (face box and face size: see :func:`face_box`, :func:`face_size`):

* **moved residual** of a region (:func:`moved_residual`): the residual at the best integer shift within
  0.15 x face size, each eye its own shift - an eye that a warp moved but kept still counts; a pixel
  survives with its 3 x 3 neighbourhood (:data:`PATCH`) - and its **chance** level (the same search
  over shifts just beyond that radius).
* **skin mean-colour ΔE00** (:func:`mean_colour_delta_e`): ΔE00 between the mean Lab colour of the
  skin pixels in the original and in the composite (a tint, where the per-pixel ΔE also counts noise).
* **far pixels changed** (:func:`far_pixels_changed`): the share of the pixels farther than 0.5 x face
  size from every face box whose ΔE00 >= tolerance (changes that leak away from the faces).
* the **eraser** image (:func:`erase_face`): the original with the face box grown by 0.05 x face size
  painted grey 128 - the attacker's baseline when the face itself is gone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from faceanon.audit.color import ciede2000, srgb_to_lab
from faceanon.checks import check_image

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
    check_image(original, "original")
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


# -- face geometry ----------------------------------------------------------------------------------------
# The audit's FACE BOX of a face is the union of the run's detection box (npz ``box``) and the bounding box
# of its 68 landmarks (npz ``landmarks68``); its FACE SIZE is sqrt(width * height) of that box. Every
# size-relative radius below (moved-eye search, far pixels, eraser growth) is a multiple of the face size.
MOVE_RADIUS = 0.15  # moved-eye search radius, x face size
FAR_DISTANCE = 0.5  # "far" pixels lie farther than this x face size from every face box
ERASER_GROW = 0.05  # the eraser paints the face box grown by this x face size on every side


def face_box(box: Optional[np.ndarray], landmarks68: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """The face box (4,) float64 [x1, y1, x2, y2] image px: union of the detection ``box`` [x1, y1, x2, y2]
    and the bounding box of ``landmarks68`` (68, 2); either may be None or non-finite. None when neither
    is usable."""
    parts = []
    if box is not None:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
        if b.size == 4 and np.all(np.isfinite(b)) and b[2] > b[0] and b[3] > b[1]:
            parts.append(b)
    if landmarks68 is not None:
        lm = np.asarray(landmarks68, dtype=np.float64)
        if lm.ndim == 2 and lm.shape[1] == 2 and lm.size and np.all(np.isfinite(lm)):
            parts.append(np.concatenate([lm.min(axis=0), lm.max(axis=0)]))
    if not parts:
        return None
    p = np.stack(parts)
    return np.array([p[:, 0].min(), p[:, 1].min(), p[:, 2].max(), p[:, 3].max()], dtype=np.float64)


def face_size(fbox: np.ndarray) -> float:
    """sqrt(width * height) of a face box [x1, y1, x2, y2] (image px)."""
    x1, y1, x2, y2 = (float(v) for v in fbox)
    return math.sqrt(max(0.0, x2 - x1) * max(0.0, y2 - y1))


def eraser_pixels(fbox: np.ndarray, shape_hw: Sequence[int], grow: float = ERASER_GROW) -> Tuple[int, int, int, int]:
    """Integer pixel range (x0, y0, x1, y1), end-exclusive, of the face box grown by ``grow`` x face size on
    every side and clipped to an image of ``shape_hw`` (H, W): the pixels the eraser baseline paints."""
    g = grow * face_size(fbox)
    h, w = int(shape_hw[0]), int(shape_hw[1])
    x0 = max(0, int(math.floor(fbox[0] - g)))
    y0 = max(0, int(math.floor(fbox[1] - g)))
    x1 = min(w, int(math.ceil(fbox[2] + g)) + 1)
    y1 = min(h, int(math.ceil(fbox[3] + g)) + 1)
    return x0, y0, max(x0, x1), max(y0, y1)


def erase_face(rgb: np.ndarray, fbox: np.ndarray, grow: float = ERASER_GROW, value: int = 128) -> np.ndarray:
    """The eraser baseline image: a copy of ``rgb`` (H, W, 3) uint8 whose grown face box (see
    :func:`eraser_pixels`) is one flat grey ``value``. Eyes, brows, nose, mouth and chin go; hair, ears
    (mostly), neck, clothes and background stay - what an attacker still has if the face were perfectly
    removed."""
    out = np.array(rgb, copy=True)
    x0, y0, x1, y1 = eraser_pixels(fbox, rgb.shape[:2], grow)
    out[y0:y1, x0:x1] = value
    return out


# -- the moved-eye residual -------------------------------------------------------------------------------
# Every shift of the search is first scored with a LINEARISED ΔE00 on a sample of the region's pixels: for
# small differences ΔE00 is a quadratic form in (ΔL, Δa', Δb) set by the ORIGINAL pixel's colour - ΔL/SL,
# the radial (chroma) part over SC and the tangential (hue) part over SH, a' = (1 + G) a (Sharma et al. 2005,
# eqs. 2-22, with the pair's mean taken at the original's colour and the blue-region rotation term left
# out). About 12 array operations per (shift, pixel) instead of ~60 for the exact formula; the exact ΔE00
# count is then taken at the best-scored shifts only.
_PROXY_SAMPLES = 1024  # region pixels the linearised score looks at (all of them when fewer)
_MAX_EXACT = 24  # shifts confirmed with the exact ΔE00, best linearised score first


def _linearised_weights(lab: np.ndarray) -> np.ndarray:
    """(N, 9) float32 per original pixel: L, a', b, 1 + G, 1/SL, and the radial / tangential unit vectors
    scaled by 1/SC and 1/SH: [L, a', b, 1+G, 1/SL, ua/SC, ub/SC, va/SH, vb/SH]."""
    L, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    C = np.hypot(a, b)
    C7 = C**7
    g1 = 1.0 + 0.5 * (1.0 - np.sqrt(C7 / (C7 + 25.0**7)))
    ap = g1 * a
    Cp = np.hypot(ap, b)
    hp = np.degrees(np.arctan2(b, ap)) % 360.0
    T = (1.0 - 0.17 * np.cos(np.radians(hp - 30.0)) + 0.24 * np.cos(np.radians(2.0 * hp))
         + 0.32 * np.cos(np.radians(3.0 * hp + 6.0)) - 0.20 * np.cos(np.radians(4.0 * hp - 63.0)))
    Lm = (L - 50.0) ** 2
    SL = 1.0 + 0.015 * Lm / np.sqrt(20.0 + Lm)
    SC = 1.0 + 0.045 * Cp
    SH = 1.0 + 0.015 * Cp * T
    safe = np.where(Cp > 1e-9, Cp, 1.0)
    ua, ub = np.where(Cp > 1e-9, ap / safe, 1.0), np.where(Cp > 1e-9, b / safe, 0.0)
    return np.stack([L, ap, b, g1, 1.0 / SL, ua / SC, ub / SC, -ub / SH, ua / SH], axis=1).astype(np.float32)


@dataclass
class MovedResidual:
    """Share of a region's pixels surviving in place and at the best shift (each label its own shift).

    pixels: region pixels; in_place: surviving at shift (0, 0); moved: surviving at the best shift with
    |s| <= radius (>= in_place); chance: the same best-shift search over the ring radius < |s| <= sqrt(2) x
    radius (as many shifts as the disc, but too far for a moved eye) - the level that the maximum over
    thousands of shifts reaches by coincidence (dark or smooth surroundings), NaN when radius < 1;
    shifts: label -> best (dx, dy) px within the radius; radius: the search radius in px.
    """

    pixels: int
    in_place: float
    moved: float
    chance: float
    shifts: Dict[int, Tuple[int, int]]
    radius: int


def _disc_shifts(radius: int) -> np.ndarray:
    """(S, 2) integer (dx, dy) with dx^2 + dy^2 <= radius^2, (0, 0) included."""
    r = int(radius)
    d = np.arange(-r, r + 1)
    dx, dy = np.meshgrid(d, d)
    keep = dx * dx + dy * dy <= r * r
    return np.stack([dx[keep], dy[keep]], axis=1)


def _ring_shifts(radius: int) -> np.ndarray:
    """(S, 2) integer (dx, dy) with radius^2 < dx^2 + dy^2 <= 2 radius^2 (about as many as the disc)."""
    r = int(radius)
    m = int(math.floor(r * math.sqrt(2.0)))
    d = np.arange(-m, m + 1)
    dx, dy = np.meshgrid(d, d)
    q = dx * dx + dy * dy
    keep = (q > r * r) & (q <= 2 * r * r)
    return np.stack([dx[keep], dy[keep]], axis=1)


#: A region pixel survives only with its neighbourhood: every region pixel within PATCH px (Chebyshev) of
#: it must match too. Single-pixel matches are what the best of thousands of shifts finds by coincidence
#: in dark or smooth surroundings (on the 0.1 baseline the single-pixel "moved" residual was as high at
#: shifts where no eye can be - 6.7 % on the dev set); a surviving 3 x 3 patch is eye structure.
PATCH = 1


def _surviving(lab_o: np.ndarray, comp_lab: np.ndarray, ys: np.ndarray, xs: np.ndarray, dx: int, dy: int,
               tolerance: float) -> int:
    """How many pixels (ys, xs) of the original (Lab ``lab_o`` (N, 3)) survive in the composite (Lab (H, W,
    3)) at (ys + dy, xs + dx): ΔE00 < tolerance there AND at every region pixel of its (2 PATCH + 1)²
    neighbourhood (see :data:`PATCH`); positions outside the array do not match."""
    h, w = comp_lab.shape[:2]
    yy, xx = ys + dy, xs + dx
    inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    if not inside.any():
        return 0
    match = np.zeros(ys.size, bool)
    match[inside] = ciede2000(lab_o[inside], comp_lab[yy[inside], xx[inside]]) < tolerance
    if PATCH <= 0 or not match.any():
        return int(np.count_nonzero(match))
    import cv2  # noqa: PLC0415

    y0, x0 = int(ys.min()), int(xs.min())
    dense = np.ones((int(ys.max()) - y0 + 1 + 2 * PATCH, int(xs.max()) - x0 + 1 + 2 * PATCH), np.uint8)
    dense[ys - y0 + PATCH, xs - x0 + PATCH] = match  # non-region pixels are neutral (1)
    kept = cv2.erode(dense, np.ones((2 * PATCH + 1, 2 * PATCH + 1), np.uint8), borderType=cv2.BORDER_CONSTANT,
                     borderValue=1)
    return int(np.count_nonzero(kept[ys - y0 + PATCH, xs - x0 + PATCH] & match))


def _best_shift(lab_o: np.ndarray, comp_lab: np.ndarray, ys: np.ndarray, xs: np.ndarray, shifts: np.ndarray,
                tolerance: float, best: int = 0, best_s: Tuple[int, int] = (0, 0)) -> Tuple[int, Tuple[int, int]]:
    """(max survivors, its shift) over ``shifts`` (S, 2), starting from a known (best, best_s).

    Scores every shift by the count of sampled pixels (<= _PROXY_SAMPLES) whose linearised ΔE00 is below
    the tolerance, then takes the exact ΔE00 count at the _MAX_EXACT best-scored shifts."""
    n = ys.size
    if len(shifts) == 0 or best >= n:
        return best, best_s
    m = int(np.abs(shifts).max())
    sub = np.linspace(0, n - 1, min(n, _PROXY_SAMPLES)).round().astype(np.int64)
    # pad by the largest shift with a far-away colour, so every shifted position is inside the array
    padded = np.pad(comp_lab.astype(np.float32), ((m, m), (m, m), (0, 0)), constant_values=1e3)
    pw = padded.shape[1]
    flat = padded.reshape(-1, 3)
    base = (ys[sub] + m) * pw + (xs[sub] + m)  # (n_sub,)
    offs = shifts[:, 1] * pw + shifts[:, 0]  # (S,)
    w = _linearised_weights(lab_o[sub])
    lim = np.float32(tolerance * tolerance)
    counts = np.empty(len(shifts), np.int64)
    score = np.empty(len(shifts), np.float64)
    step = max(1, 1_000_000 // max(1, sub.size))
    for a in range(0, len(shifts), step):
        c = flat[base[None, :] + offs[a:a + step, None]]  # (s, n_sub, 3) composite Lab at the shifted places
        dl = (c[..., 0] - w[:, 0]) * w[:, 4]
        da = c[..., 1] * w[:, 3] - w[:, 1]
        db = c[..., 2] - w[:, 2]
        d2 = dl * dl + (da * w[:, 5] + db * w[:, 6]) ** 2 + (da * w[:, 7] + db * w[:, 8]) ** 2
        counts[a:a + step] = np.count_nonzero(d2 < lim, axis=1)
        score[a:a + step] = np.minimum(d2, 100.0).mean(axis=1)
    order = np.lexsort((score, -counts))
    for i in order[:_MAX_EXACT]:
        dx, dy = int(shifts[i, 0]), int(shifts[i, 1])
        if (dx, dy) == best_s:
            continue
        c = _surviving(lab_o, comp_lab, ys, xs, dx, dy, tolerance)
        if c > best:
            best, best_s = c, (dx, dy)
    return best, best_s


def moved_residual(original: np.ndarray, composite: np.ndarray, labels: np.ndarray, radius: float,
                   region: Iterable[int] = EYE, tolerance: float = DEFAULT_TOLERANCE) -> MovedResidual:
    """Residual of a region that also counts it when the anonymizer moved it (a warp, a shifted paste).

    original, composite: (H, W, 3) uint8 RGB, same size; labels: (H, W) part labels of the ORIGINAL;
    radius: search radius in px (the audit uses 0.15 x face size); region: label values, each searched on
    its own (eyes 1 and 2: each eye gets its own best shift).

    For a label with pixels P and an integer shift s = (dx, dy), |s| <= radius (Euclidean), the
    survivors are the p in P with ΔE00(original[q], composite[q + s]) < tolerance for p and for every q
    of P in its 3 x 3 neighbourhood (:data:`PATCH`; q + s outside the image: not surviving). ``moved`` = (sum over labels of the max over s of the survivors) / |P|;
    ``in_place`` the same at s = (0, 0) only (the plain residual); ``chance`` the same max over the ring
    radius < |s| <= sqrt(2) radius, where a moved eye is not expected. On the baseline runs it is as high
    as ``moved`` (mean over the dev set 6.7 % vs 7.8 %, fixtures 1.4 % vs 1.0 %): ``moved`` well above
    ``chance`` means a moved eye, ``moved`` near ``chance`` coincidental matches (dark, smooth surroundings).

    Search (see _best_shift): every shift scored by a linearised ΔE00 on <= 1024 sampled pixels, exact
    ΔE00 at the 24 best-scored ones.
    """
    original = np.asarray(original)
    composite = np.asarray(composite)
    labels = np.asarray(labels)
    if original.shape != composite.shape or original.ndim != 3 or labels.shape != original.shape[:2]:
        raise ValueError(f"moved_residual: original {original.shape}, composite {composite.shape} and labels "
                         f"{labels.shape} must share (H, W)")
    r = max(0, int(math.floor(radius)))
    h, w = labels.shape
    disc, ring = _disc_shifts(r), _ring_shifts(r)
    reach = int(math.floor(r * math.sqrt(2.0)))
    total = in_place = moved = chance = 0
    best_shifts: Dict[int, Tuple[int, int]] = {}
    for lab_value in region:
        ys, xs = np.nonzero(labels == lab_value)
        n = ys.size
        if n == 0:
            continue
        # the composite around this label only: its box grown by the largest shift
        y0, y1 = max(0, int(ys.min()) - reach), min(h, int(ys.max()) + reach + 1)
        x0, x1 = max(0, int(xs.min()) - reach), min(w, int(xs.max()) + reach + 1)
        comp_lab = srgb_to_lab(composite[y0:y1, x0:x1])
        lys, lxs = ys - y0, xs - x0
        lab_o = srgb_to_lab(original[ys, xs])
        here = _surviving(lab_o, comp_lab, lys, lxs, 0, 0, tolerance)
        best, best_s = _best_shift(lab_o, comp_lab, lys, lxs, disc, tolerance, here, (0, 0))
        by_chance, _s = _best_shift(lab_o, comp_lab, lys, lxs, ring, tolerance)
        total += n
        in_place += here
        moved += best
        chance += by_chance
        best_shifts[int(lab_value)] = best_s
    if total == 0:
        return MovedResidual(0, float("nan"), float("nan"), float("nan"), {}, r)
    return MovedResidual(total, in_place / total, moved / total, chance / total if r >= 1 else float("nan"),
                         best_shifts, r)


# -- skin mean colour ------------------------------------------------------------------------------------
def mean_colour_delta_e(original: np.ndarray, composite: np.ndarray, labels: np.ndarray,
                        region: Iterable[int] = SKIN) -> Tuple[int, float]:
    """(pixels, ΔE00) between the MEAN CIELAB colour of the region's pixels in the original and the mean
    CIELAB colour of the same pixels in the composite (each pixel converted to Lab, then averaged).

    original, composite: (H, W, 3) uint8; labels: (H, W) part labels; region: label values (skin: 8).
    A uniform tint of the skin shows here in full; pixel noise that averages out does not. NaN when the
    region is empty.
    """
    mask = np.isin(np.asarray(labels), list(region))
    n = int(np.count_nonzero(mask))
    if n == 0:
        return 0, float("nan")
    m_o = srgb_to_lab(np.asarray(original)[mask]).mean(axis=0)
    m_c = srgb_to_lab(np.asarray(composite)[mask]).mean(axis=0)
    return n, float(ciede2000(m_o, m_c))


# -- pixels far from every face ----------------------------------------------------------------------------
def far_mask(shape_hw: Sequence[int], face_boxes: Sequence[np.ndarray], far: float = FAR_DISTANCE) -> np.ndarray:
    """(H, W) bool: the pixels whose centre lies farther than ``far`` x face size from EVERY face box.

    Distance of a pixel centre (x, y) to a box [x1, y1, x2, y2] is Euclidean to the nearest point of the
    box (0 inside it). No face box: every pixel is far.
    """
    h, w = int(shape_hw[0]), int(shape_hw[1])
    near = np.zeros((h, w), bool)
    xs = np.arange(w, dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)
    for b in face_boxes:
        lim = far * face_size(b)
        dx = np.maximum(np.maximum(b[0] - xs, xs - b[2]), 0.0)
        dy = np.maximum(np.maximum(b[1] - ys, ys - b[3]), 0.0)
        near |= dy[:, None] ** 2 + dx[None, :] ** 2 <= lim * lim
    return ~near


def far_pixels_changed(original: np.ndarray, composite: np.ndarray, face_boxes: Sequence[np.ndarray],
                       tolerance: float = DEFAULT_TOLERANCE, far: float = FAR_DISTANCE) -> Tuple[int, float]:
    """(far pixels, share of them changed): changed = ΔE00(original, composite) >= tolerance, over the
    pixels of :func:`far_mask`. Catches warps, fills or colour shifts that leak away from the faces
    (a JPEG re-encode alone changes few pixels by ΔE00 >= 2). NaN share when no pixel is far."""
    original = np.asarray(original)
    composite = np.asarray(composite)
    if original.shape != composite.shape:
        raise ValueError(f"original {original.shape} and composite {composite.shape} differ in size")
    mask = far_mask(original.shape[:2], face_boxes, far)
    n = int(np.count_nonzero(mask))
    if n == 0:
        return 0, float("nan")
    # identical pixels have ΔE 0: convert only the ones that differ, in chunks (memory stays ~100 MB)
    differ = mask & np.any(original != composite, axis=-1)
    yy, xx = np.nonzero(differ)
    changed = 0
    chunk = 1 << 20
    for a in range(0, yy.size, chunk):
        o = original[yy[a:a + chunk], xx[a:a + chunk]]
        c = composite[yy[a:a + chunk], xx[a:a + chunk]]
        changed += int(np.count_nonzero(ciede2000(srgb_to_lab(o), srgb_to_lab(c)) >= tolerance))
    return n, changed / n
