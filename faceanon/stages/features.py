"""Identity-free eyes and mouth: drawn from the mean face, coloured from the person's own skin.

The segment stage removes the eyes (lids and lash line included) and the lips and fills them from the
surrounding skin. Left like that, a face has skin-coloured smudges where its eyes and mouth were: it
no longer reads as a face to a person or to a face detector. This module puts back features that
belong to nobody:

* their SHAPE and POSITION come from the model's mean face (its 68 landmark vertices), so every
  anonymized face gets the same closed lids, lash lines and lips - in UV space, i.e. on the
  mesh, so they follow the morphed face in every view;
* their COLOUR comes from the texture they are painted on, which was baked from the already
  inpainted photo: the features only darken (lash line, lid crease, eye sockets, the line
  between the lips) or tint (lips) the person's skin there, so no pixel of the removed eyes or
  lips can come back and the lighting of the photo is kept.

The eyes are closed: a closed lid with a lash line is identity-free by construction (no iris, no eye
shape) and looks natural at any head pose. The drawing is done once per (model, texture size) on a
canvas in the mean face's frontal plane and mapped to the UV atlas (:func:`feature_layers`); each
texture then costs two multiplications (:func:`paint_features`).

The composite draws the same layers on the warped photo through the morphed mesh's UVs
(:class:`faceanon.stages.composite.FaceFeatures`), so they take the light of the photo where they land.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceanon.cache import BoundedCache, content_digest
from faceanon.checks import check_image
from faceanon.types import BROW_LABELS, removal_parts

__all__ = ["FeatureLayers", "feature_layers", "paint_features", "brow_colour", "skin_chroma", "with_chroma"]

# Geometry of the drawing, as fractions of the mean face's eye width ``ew`` (landmarks 36-39) or of its
# mouth width ``mw`` (48-54). Chosen by eye on renders and composites of the fixtures.
LASH_SIGMA = 0.06  # half-width of the lash line (Gaussian sigma), * ew
LASH_DARK = 0.9  # darkening at the lash line's centre (0 = none, 1 = black)
LASH_SAG = 0.30  # the closed lid line sags below the corner line by this fraction of the lower lid's depth
LASHES_BELOW = 0.10  # lashes: a fainter band this far below the lid line, * ew
CREASE_UP = 0.42  # lid crease above the lid line, * ew
CREASE_SIGMA = 0.06
CREASE_DARK = 0.3
SOCKET_SIGMA = 0.55  # the soft shadow of the eye socket, * ew
SOCKET_DARK = 0.22
LIP_EDGE_SIGMA = 0.035  # soft edge of the lips, * mw
LIP_LINE_SIGMA = 0.016  # the line between the lips, * mw
LIP_LINE_DARK = 0.62
CORNER_DARK = 0.35  # mouth corners
#: lip colour as a per-channel factor on the skin under it (redder and darker than the skin); the
#: upper lip, facing down, a little darker than the lower one
UPPER_LIP_RGB = (0.80, 0.56, 0.56)
LOWER_LIP_RGB = (0.88, 0.64, 0.63)
BROW_INNER = 0.30  # eyebrow thickness at its inner end, * ew ...
BROW_OUTER = 0.11  # ... tapering to this at the tail
BROW_DROP = 0.02  # the brow's upper edge lies this far below the brow landmarks, * ew
BROW_STROKES = 260  # hair strokes per brow
BROW_DENSITY = 0.95  # coverage of the stroke layer at its densest
_CANVAS_PER_EW = 96.0  # canvas resolution
LAYER_SIZE = 1024  # largest atlas the drawing is mapped at (see feature_layers)


@dataclass(frozen=True)
class FeatureLayers:
    """The drawing on a UV atlas of side T.

    eyes:  (T, T) float32 multiplicative factor on every channel (1 = unchanged; < 1 on the lash
           lines, lid creases and eye sockets)
    mouth: (T, T, 3) float32 per-channel factor: the lip colour (already blended with 1 by the lips'
           soft mask) times the darkening of the line between the lips and the mouth corners
    brows: (T, T) float32 coverage in [0, 1] of the mean face's eyebrows (hair strokes, soft edges)
    relief: (T, T, 3) float32 the mean face's relief (convex brighter, concave darker, see
           :func:`mean_relief`) as a multiplicative factor, one channel per part group (eyes, brows,
           lips), each already restricted to its removed region: the flat fill gets the shading of
           eye sockets, lids, brow ridge and lips that a face has
    window: (y0, y1, x0, x1) the atlas window outside which every layer is neutral (painting only
           touches it: the features cover ~15 % of the atlas); the arrays above are this window
    atlas_size: T
    """

    eyes: np.ndarray
    mouth: np.ndarray
    brows: np.ndarray
    relief: np.ndarray
    window: tuple[int, int, int, int]
    atlas_size: int = 0


def _gauss_line(canvas: np.ndarray, pts: np.ndarray, sigma: float, strength: np.ndarray | float) -> None:
    """Add a soft line along the polyline ``pts`` (K, 2) canvas px: max-blend of strength * exp(-d²/2s²)."""
    h, w = canvas.shape
    line = np.zeros((h, w), np.uint8)
    cv2.polylines(line, [np.round(pts * 4).astype(np.int32)], False, 255, 1, cv2.LINE_8, shift=2)
    d = cv2.distanceTransform((line == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    prof = np.exp(-0.5 * (d / max(sigma, 1e-3)) ** 2)
    if not np.isscalar(strength):
        prof = prof * strength
    else:
        prof = prof * float(strength)
    np.maximum(canvas, prof, out=canvas)


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _taper_map(shape, pts: np.ndarray, power: float = 0.6) -> np.ndarray:
    """Per canvas px, sin(pi t)^power of the parameter t of the nearest point of the polyline: lines
    that fade out toward their ends (eye corners, mouth corners)."""
    h, w = shape
    n = len(pts)
    idx = np.zeros((h, w), np.float32)
    best = np.full((h, w), np.inf, np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for i, (x, y) in enumerate(pts[:: max(1, n // 24)]):
        d = (xs - x) ** 2 + (ys - y) ** 2
        m = d < best
        best[m] = d[m]
        idx[m] = i * max(1, n // 24) / max(n - 1, 1)
    return np.clip(np.sin(np.pi * np.clip(idx, 0, 1)), 0.0, 1.0) ** power


def _draw_canvas(lm: np.ndarray, cell: float, origin: tuple[float, float], shape: tuple[int, int]):
    """(eye shade, mouth shade, lip_upper, lip_lower, brows) float32 canvases in the mean face's frontal plane."""
    x0, y1 = origin

    def px(p):
        p = np.atleast_2d(p)
        return np.stack([(p[:, 0] - x0) / cell, (y1 - p[:, 1]) / cell], axis=1)

    L = px(lm)
    ew = float(np.mean([np.linalg.norm(L[39] - L[36]), np.linalg.norm(L[45] - L[42])]))
    mw = float(np.linalg.norm(L[54] - L[48]))
    h, w = shape
    dark = np.zeros((h, w), np.float32)
    for corner_a, corner_b, lower in ((36, 39, (40, 41)), (42, 45, (46, 47))):
        a, b = L[corner_a], L[corner_b]
        low = L[list(lower)].mean(axis=0)
        mid = (a + b) / 2
        ctrl = mid + LASH_SAG * 2 * (low - mid)  # quadratic Bezier: the curve reaches half its control offset
        lid = _bezier(a, ctrl, b)
        taper = _taper_map(shape, lid, 0.45)
        _gauss_line(dark, lid, LASH_SIGMA * ew, LASH_DARK * taper)
        _gauss_line(dark, lid + [0, LASHES_BELOW * ew * 0.5], LASH_SIGMA * ew * 1.6, 0.35 * LASH_DARK * taper)
        # the lid crease follows the open eye's upper lid, raised toward the brow
        upper = L[[corner_a + 1, corner_a + 2]].mean(axis=0)
        crease = _bezier(a + [0.0, -0.10 * ew], upper + [0, -CREASE_UP * ew] + (upper - mid) * 1.0,
                         b + [0.0, -0.16 * ew])
        _gauss_line(dark, crease, CREASE_SIGMA * ew, CREASE_DARK * _taper_map(shape, crease, 0.6))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        c = mid + [0, -0.15 * ew]
        sock = SOCKET_DARK * np.exp(-0.5 * (((xs - c[0]) / (SOCKET_SIGMA * ew * 1.3)) ** 2
                                            + ((ys - c[1]) / (SOCKET_SIGMA * ew)) ** 2))
        np.maximum(dark, sock.astype(np.float32), out=dark)

    # lips: outer polygon split along the line between the lips
    upper_poly = np.concatenate([L[48:55], L[[64, 63, 62, 61, 60]]])
    lower_poly = np.concatenate([L[54:60], L[[48, 60, 67, 66, 65, 64]]])
    lips = []
    for poly in (upper_poly, lower_poly):
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(poly * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
        soft = cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), max(LIP_EDGE_SIGMA * mw, 0.5))
        lips.append(soft)
    # the line between the lips and the corners
    inner = np.concatenate([L[[48]], (L[60:65] + L[[60, 67, 66, 65, 64]]) / 2, L[[54]]])
    order = np.argsort(inner[:, 0])
    inner = inner[order]
    brows = np.zeros((h, w), np.float32)
    rng = np.random.default_rng(20261206)  # the same strokes for every face: nothing personal
    for ids, inner_first in ((list(range(21, 16, -1)), True), (list(range(22, 27)), True)):
        pts = L[ids]  # from the inner end (near the nose) to the tail
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg)]) / max(seg.sum(), 1e-6)
        ts = np.linspace(0.0, 1.0, 64)
        top = np.stack([np.interp(ts, arc, pts[:, 0]), np.interp(ts, arc, pts[:, 1])], axis=1) + [0, BROW_DROP * ew]
        thick = (BROW_INNER + (BROW_OUTER - BROW_INNER) * ts ** 1.3) * ew
        bottom = top + np.stack([np.zeros_like(thick), thick], axis=1)
        band = np.zeros((h, w), np.uint8)
        cv2.fillPoly(band, [np.round(np.concatenate([top, bottom[::-1]]) * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
        strokes = np.zeros((h, w), np.uint8)
        direction = np.gradient(top, axis=0)
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-6)
        for _ in range(BROW_STROKES):
            t = rng.random()
            k = int(t * (len(ts) - 1))
            base = top[k] + [0, thick[k] * (0.15 + 0.8 * rng.random())]
            d = direction[k].copy()
            # hairs at the inner end point up, then lie along the brow
            up = np.array([0.0, -1.0])
            d = (1 - min(t * 3, 1.0)) * (0.6 * up + 0.4 * d) + min(t * 3, 1.0) * (d + 0.25 * up)
            d /= max(np.linalg.norm(d), 1e-6)
            length = (0.10 + 0.10 * rng.random()) * ew
            a, b = base - d * length * 0.3, base + d * length * 0.7
            cv2.line(strokes, tuple(np.round(a * 4).astype(int)), tuple(np.round(b * 4).astype(int)), 255,
                     max(1, int(round(0.012 * ew))), cv2.LINE_AA, shift=2)
        soft_band = cv2.GaussianBlur(band.astype(np.float32) / 255.0, (0, 0), max(0.025 * ew, 0.5))
        hair = cv2.GaussianBlur(strokes.astype(np.float32) / 255.0, (0, 0), max(0.006 * ew, 0.5))
        layer = soft_band * np.clip(0.45 + 0.8 * hair, 0.0, 1.0) * BROW_DENSITY
        np.maximum(brows, layer.astype(np.float32), out=brows)

    mdark = np.zeros((h, w), np.float32)
    _gauss_line(mdark, inner, LIP_LINE_SIGMA * mw, LIP_LINE_DARK * _taper_map(shape, inner, 0.35))
    for k in (48, 54):
        _gauss_line(mdark, np.stack([L[k], L[k] + [0.001, 0]]), LIP_LINE_SIGMA * mw * 1.8, CORNER_DARK)
    return 1.0 - dark, 1.0 - mdark, lips[0], lips[1], brows


_CACHE: BoundedCache[FeatureLayers] = BoundedCache(5)


def feature_layers(mean_vertices: np.ndarray, triangles: np.ndarray, uv: np.ndarray, landmark_ids: np.ndarray,
                   size: int, vertex_labels: "np.ndarray | None" = None) -> FeatureLayers:
    """The drawing mapped onto a (size, size) UV atlas, computed once per (model, size) and cached.

    mean_vertices: (N, 3) float the model's mean face (canonical frame: x right, y up);
    triangles: (M, 3) int; uv: (N, 2) in [0, 1] (v up); landmark_ids: (68,) int vertex ids of the
    iBUG-68 landmarks; size: atlas side; vertex_labels: optional (N,) part labels (for the relief;
    without them there is none).
    """
    mv = np.ascontiguousarray(mean_vertices, np.float32)
    tris = np.ascontiguousarray(triangles, np.int32)
    uvf = np.ascontiguousarray(uv, np.float32)
    ids = np.asarray(landmark_ids, np.int64).reshape(-1)
    if ids.shape != (68,) or ids.min() < 0 or ids.max() >= len(mv):
        raise ValueError(f"landmark_ids must be 68 vertex ids in [0, {len(mv)}), got {ids.shape}")
    vlab = None if vertex_labels is None else np.ascontiguousarray(vertex_labels, np.uint8)
    return _CACHE.get_or_build((int(size), content_digest(mv, tris, ids, uvf, vlab)),
                               lambda: _build_feature_layers(mv, tris, uvf, ids, int(size), vlab))


def _build_feature_layers(mv: np.ndarray, tris: np.ndarray, uvf: np.ndarray, ids: np.ndarray, size: int,
                          vlab: "np.ndarray | None") -> FeatureLayers:
    from faceanon.raster import RasterResult, interpolate
    from faceanon.stages.texture import uv_layout

    lm = mv[ids, :2].astype(np.float64)
    ew = float(np.mean([np.linalg.norm(lm[39] - lm[36]), np.linalg.norm(lm[45] - lm[42])]))
    cell = ew / _CANVAS_PER_EW
    # canvas over the eyes and the mouth only (the features live there), with a margin
    region = lm[np.r_[17:27, 36:68]]
    x0, x1 = region[:, 0].min() - ew, region[:, 0].max() + ew
    y0, y1 = region[:, 1].min() - ew, region[:, 1].max() + ew
    shape = (int(np.ceil((y1 - y0) / cell)) + 1, int(np.ceil((x1 - x0) / cell)) + 1)
    eyes_c, mouth_c, up_c, lo_c, brows_c = _draw_canvas(lm, cell, (x0, y1), shape)

    # the drawing is smooth: it is mapped at most at LAYER_SIZE and resampled to larger atlases
    # (the first 2048² texture of a process: 1.1 s instead of ~4 s)
    work = min(int(size), LAYER_SIZE)
    layout = uv_layout(uvf, tris, work, symmetric=False)
    r = RasterResult(layout.tri_id, layout.bary, None, tris, len(mv))
    pos = interpolate(r, mv[:, :2].astype(np.float64))  # (T, T, 2) mean-face x, y of every texel
    mapx = ((pos[..., 0] - x0) / cell).astype(np.float32)
    mapy = ((y1 - pos[..., 1]) / cell).astype(np.float32)
    inside = layout.inside
    mapx[~inside] = -1.0
    mapy[~inside] = -1.0

    def sample(c: np.ndarray, border: float) -> np.ndarray:
        return cv2.remap(c.astype(np.float32), mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=border)

    eyes = sample(eyes_c, 1.0)
    up = sample(up_c, 0.0)[..., None]
    lo = sample(lo_c, 0.0)[..., None]
    lip = 1.0 + up * (np.asarray(UPPER_LIP_RGB, np.float32) - 1.0) + lo * (np.asarray(LOWER_LIP_RGB, np.float32) - 1.0)
    mouth = lip * sample(mouth_c, 1.0)[..., None]
    brows = sample(brows_c, 0.0)
    relief = np.ones(eyes.shape + (3,), np.float32)
    if vlab is not None and vlab.shape == (len(mv),):
        iod = float(np.linalg.norm(lm[36] - lm[45]))
        per_vertex = mean_relief(mv, tris, vlab, iod)  # (N, 3)
        relief = interpolate(r, per_vertex.astype(np.float64)).astype(np.float32)
        relief[~inside] = 1.0
    if work != int(size):
        from faceanon.stages.texture import resize_texture

        eyes, mouth, brows, relief = (resize_texture(np.ascontiguousarray(a, np.float32), int(size))
                                      for a in (eyes, mouth, brows, relief))
    active = (np.abs(eyes - 1.0) > 1e-3) | (np.abs(mouth - 1.0) > 1e-3).any(axis=2) | (brows > 1e-3)
    ys, xs = np.nonzero(active.any(axis=1))[0], np.nonzero(active.any(axis=0))[0]
    window = (int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1) if ys.size else (0, 0, 0, 0)
    y0w, y1w, x0w, x1w = window
    layers = FeatureLayers(eyes=np.ascontiguousarray(eyes[y0w:y1w, x0w:x1w], np.float32),
                           mouth=np.ascontiguousarray(mouth[y0w:y1w, x0w:x1w], np.float32),
                           brows=np.ascontiguousarray(brows[y0w:y1w, x0w:x1w], np.float32),
                           relief=np.ascontiguousarray(relief[y0w:y1w, x0w:x1w], np.float32), window=window,
                           atlas_size=int(size))
    return layers


#: Per-channel exponents of a shading factor: skin in shadow turns redder, not greyer (light scattered
#: under the skin is red), so a uniform darkening looks olive on skin. R darkens less, B more.
WARM_SHADOW = (0.85, 1.0, 1.12)


def warm_shade(factor: np.ndarray, chroma: float = 1.0) -> np.ndarray:
    """(..., 3) float32 per-channel factors from a (...) grey shading factor (see :data:`WARM_SHADOW`).

    chroma: :func:`skin_chroma` of the face in [0, 1]; the warm tint is scaled by it, so that the
    shadows drawn on a greyscale photo stay grey (0: the same factor on every channel).
    """
    c = float(np.clip(chroma, 0.0, 1.0))
    f = np.clip(np.asarray(factor, np.float32), 1e-3, None)[..., None]
    warm = np.asarray(WARM_SHADOW, np.float32)
    return f ** (warm if c >= 1.0 else 1.0 + c * (warm - 1.0))


def with_chroma(mouth: np.ndarray, chroma: float) -> np.ndarray:
    """The mouth layer (..., 3) with its colour (the per-channel spread around its grey level) scaled by
    ``chroma`` in [0, 1]: 0 darkens the lips without tinting them (a greyscale photo), 1 is the full
    lip colour (see :func:`skin_chroma`)."""
    c = float(np.clip(chroma, 0.0, 1.0))
    if c >= 1.0:
        return mouth
    grey = mouth.mean(axis=-1, keepdims=True)
    return grey + c * (mouth - grey)


#: saturation ((max - min) / max of the mean RGB) of a typical skin colour: at or above it the lips get
#: their full colour
SKIN_SATURATION = 0.25


def skin_chroma(rgb: np.ndarray, labels: np.ndarray) -> float:
    """How colourful a face's skin is, in [0, 1] (1 = at least a typical skin's saturation, 0 = grey).

    rgb: (H, W, 3) uint8; labels: (H, W) part labels of the face (its skin, label 8, is measured).
    Returns 1.0 when the face shows no skin pixel.
    """
    m = np.asarray(labels) == 8
    if m.sum() < 16:
        return 1.0
    mean = np.asarray(rgb)[m].reshape(-1, 3).astype(np.float64).mean(axis=0)
    sat = (mean.max() - mean.min()) / max(mean.max(), 1.0)
    return float(np.clip(sat / SKIN_SATURATION, 0.0, 1.0))


def paint_features(texture: np.ndarray, layers: FeatureLayers, *, keep_mouth: bool = False,
                   brow_rgb: "np.ndarray | None" = None, chroma: float = 1.0) -> np.ndarray:
    """The texture with the identity-free eyes (lips unless ``keep_mouth``, brows when ``brow_rgb``) on it.

    texture: (T, T, 3) uint8 RGB baked from the inpainted photo; layers: :func:`feature_layers` for
    the same T; brow_rgb: optional (3,) colour of the eyebrows (:func:`brow_colour`), None = keep no
    brows in the drawing (the person's own were not removed). Returns a new (T, T, 3) uint8 texture.
    The eyes and lips only darken or tint the given texels; the brows are the mean face's strokes in
    one colour: the result depends on the texture's own colours, that colour and the mean face.
    chroma: :func:`skin_chroma` of the face (the lips and eye shadows of a greyscale photo are not
    tinted).
    """
    tex = np.asarray(texture)
    check_image(tex, "texture", where="paint_features")
    y0, y1, x0, x1 = layers.window
    if y1 > tex.shape[0] or x1 > tex.shape[1]:
        raise ValueError(f"paint_features: layers are for a larger atlas than the texture {tex.shape[:2]}")
    res = tex.copy()
    out = tex[y0:y1, x0:x1].astype(np.float32)
    rel = layers.relief[..., 0].copy()  # eyes
    if brow_rgb is not None:
        rel *= layers.relief[..., 1]
    if not keep_mouth:
        rel *= layers.relief[..., 2]
    out *= warm_shade(rel * layers.eyes, chroma)
    if not keep_mouth:
        out *= with_chroma(layers.mouth, chroma)
    if brow_rgb is not None:
        a = layers.brows[..., None]
        out = out * (1.0 - a) + np.asarray(brow_rgb, np.float32).reshape(1, 1, 3) * a
    res[y0:y1, x0:x1] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return res


#: Relief of the mean face (:func:`mean_relief`): curvature measured at RELIEF_SCALE x the IOD, turned
#: into a brightness factor 1 + RELIEF_GAIN x curvature (clipped to RELIEF_RANGE), applied within
#: RELIEF_MARGIN x the IOD of each removed part and fading out over RELIEF_FEATHER x the IOD.
RELIEF_SCALE = 0.12
RELIEF_GAIN = 0.6
RELIEF_RANGE = (0.80, 1.08)
RELIEF_MARGIN = 0.15
RELIEF_FEATHER = 0.10


def mean_relief(vertices: np.ndarray, triangles: np.ndarray, vertex_labels: np.ndarray, iod: float) -> np.ndarray:
    """(N, 3) float32 per-vertex brightness factor of the mean face's relief, one column per part
    group (eyes, brows, lips), 1 away from that group's region.

    The curvature at a vertex is its height above the Gaussian-weighted centroid of its neighbours
    (sigma RELIEF_SCALE x iod) along its normal, divided by that sigma: eye sockets, the fold under
    the brow and the corners of the mouth are concave (darker), lids, brow ridge and lips convex.
    Computed on the MEAN face, so it is the same for everyone.
    """
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64)
    fn = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, t[:, k], fn)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
    sigma = RELIEF_SCALE * iod
    sub = v[::16]  # the centroids are smooth averages: every 16th vertex is plenty (~150 per neighbourhood)
    tree = cKDTree(sub)
    out = np.ones((len(v), 3), np.float32)
    groups = [(1, 2), (3, 4), (6, 7)]
    region_any = np.isin(vertex_labels, sum(groups, ()))
    # curvature only where some region can use it
    reach = RELIEF_MARGIN * iod + RELIEF_FEATHER * iod
    d_any, _ = cKDTree(v[region_any]).query(v, k=1, distance_upper_bound=reach) if region_any.any() else (None, None)
    need = np.nonzero(np.isfinite(d_any))[0] if d_any is not None else np.array([], np.int64)
    curv = np.zeros(len(v))
    if need.size:
        # Gaussian-weighted neighbour centroids as one sparse product (vertices within 2.5 sigma)
        dist = cKDTree(v[need]).sparse_distance_matrix(tree, 2.5 * sigma, output_type="coo_matrix")
        wts = np.exp(-0.5 * (dist.data / sigma) ** 2)
        from scipy.sparse import coo_matrix

        W = coo_matrix((wts, (dist.row, dist.col)), shape=(need.size, len(sub))).tocsr()
        den = np.asarray(W.sum(axis=1)).reshape(-1) + 1.0  # the vertex itself (distance 0 is not stored)
        cen = (W @ sub + v[need]) / den[:, None]
        curv[need] = np.einsum("ij,ij->i", vn[need], v[need] - cen) / sigma
    factor = np.clip(1.0 + RELIEF_GAIN * curv, *RELIEF_RANGE)
    for g, parts in enumerate(groups):
        core = np.isin(vertex_labels, parts)
        if not core.any():
            continue
        r0, r1 = RELIEF_MARGIN * iod, (RELIEF_MARGIN + RELIEF_FEATHER) * iod
        d, _ = cKDTree(v[core]).query(v, k=1, distance_upper_bound=r1)
        tt = np.clip((r1 - d) / (r1 - r0), 0.0, 1.0)
        tt[~np.isfinite(d)] = 0.0
        wgt = tt * tt * (3.0 - 2.0 * tt)
        out[:, g] = (1.0 + wgt * (factor - 1.0)).astype(np.float32)
    return out


#: Without a measured brow colour, eyebrows are drawn this much darker than the skin under them.
BROW_FROM_SKIN = (0.42, 0.36, 0.33)


def brow_colour(rgb: np.ndarray, labels: np.ndarray) -> "np.ndarray | None":
    """(3,) float32 colour of a face's eyebrow hair, or None when the face shows no brow pixels.

    rgb: (H, W, 3) uint8 ORIGINAL photo; labels: (H, W) uint8 visible part labels of the face. The
    brow label regions hold hair and skin: the darker half (by luma) of their pixels is averaged. One
    colour per face - like the hair colour, which the photo shows anyway - is all that is kept.
    """
    m = np.isin(np.asarray(labels), BROW_LABELS)
    if m.sum() < 8:
        return None
    px = np.asarray(rgb)[m].astype(np.float32)
    luma = px @ np.array([0.299, 0.587, 0.114], np.float32)
    dark = px[luma <= np.median(luma)]
    return dark.mean(axis=0).astype(np.float32) if len(dark) else None
