"""Warp a photo so that each face takes its anonymized (morphed) shape, keeping the photo's own pixels.

The 3D morph moves every surface point of a fitted face: a point at ``source`` (the original fit, image
px) goes to ``target`` (the morphed face at the original pose, image px). The anonymized photo shows,
at each pixel ``q`` of the morphed face, the photo's pixel at the source position of the surface point
seen there, i.e. a BACKWARD map ``q -> q + b(q)``:

* on the morphed face (``covered``): the morphed mesh is rasterized and the source positions of its
  vertices are interpolated with the barycentrics - exact per pixel, self-occlusion included (at a
  profile the mean nose hides other cheek pixels than the person's nose did);
* around it, the displacement is continued smoothly past the face outline (a harmonic continuation
  of the face's displacements, computed at a reduced scale: the field is smooth there) and faded out
  with a smoothstep over :data:`FADE_FRACTION` of the face size, so hair, ears, neck and background
  follow the new silhouette - a nose, lips, chin or jaw line of the person's own profile cannot
  stay behind as a silhouette - and everything farther away is left bit-identical;
* in a thin band just inside the outline the exact field is blended into the continued one, so the
  two meet without a step (no seam).

Surface points that the morphed face shows but the original photo did not (they were hidden, e.g.
behind the person's larger nose) are flagged (``hidden``): their photo pixel belongs to the occluder,
so the composite paints them from the baked texture instead (mirrored from the other side).

Several faces: each face's field lives in a window (its bounding box plus the fade radius); faces
whose windows overlap are merged into one field - on a face, the nearest face's exact field; around
faces, the fade-weighted average of the continued fields - and warped in one pass, so the result
does not depend on the order of the faces.

Coordinates: image px, x right, y down, pixel centres at integers; z larger = nearer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from faceanon.raster import RasterResult, interpolate, rasterize
from faceanon.stages.imageops import harmonic_fill

__all__ = ["FaceWarp", "face_warp", "warp_image", "warp_mask", "FADE_FRACTION", "face_size"]

#: Fade radius of the displacement beyond the morphed face's outline, as a fraction of the face size
#: (:func:`face_size`). Large enough that the surroundings are not sheared (the continued displacement
#: is at most ~15 % of the face size and the smoothstep's steepest slope is 1.5 / radius, so the warp
#: stays fold-free), small enough that pixels half a face size away are untouched.
FADE_FRACTION = 0.30
#: Width of the band inside the outline where the exact field blends into the continued one, in px
#: of the reduced-scale field (the continued field's resolution).
BLEND_CELLS = 2.0
#: The continued field is computed at a scale where the window's longer side is about this many px.
FIELD_SIDE = 192
#: Faces whose warp window is longer than this (px) get their field computed at the scale where it is
#: this long and bilinearly upsampled (a 24 MP close-up: 4.8 s and 3.6 GB at full scale).
MAX_SIDE = 1400
#: Jacobi sweeps per multigrid level of the harmonic continuation (faceanon.stages.imageops.harmonic_fill).
RELAX_SWEEPS = 40
#: Depth tolerance of the "hidden in the original" test, as a fraction of the face's depth range.
HIDDEN_TOLERANCE = 0.02


def face_size(points: np.ndarray) -> float:
    """Face size in px: the square root of the area of the 2D bounding box of ``points`` (N, >=2)."""
    p = np.asarray(points, np.float64)
    finite = np.isfinite(p[:, :2]).all(axis=1)
    if not finite.any():
        return 0.0
    q = p[finite, :2]
    return float(np.sqrt(max(np.ptp(q[:, 0]), 1.0) * max(np.ptp(q[:, 1]), 1.0)))


@dataclass
class FaceWarp:
    """The backward displacement of one face inside its window of the photo.

    window:  (x0, y0, x1, y1) int, the part of the photo the warp may change (x1, y1 exclusive)
    field:   (h, w, 2) float32, source position minus pixel position (px), 0 beyond the fade radius
    weight:  (h, w) float32 in [0, 1], 1 on the morphed face, fading to 0 at the fade radius
    covered: (h, w) bool, pixels of the morphed face (the target mesh's coverage)
    exact:   (h, w) bool, pixels whose field is the exact per-pixel one (covered, minus the blend band)
    hidden:  (h, w) bool, covered pixels whose source point is not visible in the original photo
    raster:  the target mesh rasterized over the window - at ``scale`` of its size (see
             :meth:`interpolate`, which the composite uses for its UV lookups)
    depth:   compositing key of the face (its size; larger = nearer)
    scale:   resolution of ``raster`` (and of the field's computation) relative to the photo: 1, or less
             for a face larger than :data:`MAX_SIDE` px (the field is smooth; upsampled bilinearly)
    """

    window: tuple[int, int, int, int]
    field: np.ndarray
    weight: np.ndarray
    covered: np.ndarray
    exact: np.ndarray
    hidden: np.ndarray
    raster: RasterResult
    depth: float
    scale: float = 1.0

    def interpolate(self, attrs: np.ndarray) -> np.ndarray:
        """Per-vertex ``attrs`` (N, C) or (N,) blended over the target mesh at the window's full
        resolution: (h, w, C) or (h, w) float32, 0 off the mesh."""
        out = interpolate(self.raster, attrs)
        if self.scale == 1.0:
            return out
        h, w = self.covered.shape
        up = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR).reshape((h, w) + out.shape[2:])
        up[~self.covered] = 0.0
        return up


def _check_mesh(name: str, v: np.ndarray, n: Optional[int] = None) -> np.ndarray:
    v = np.asarray(v)
    if v.ndim != 2 or v.shape[1] != 3 or not np.issubdtype(v.dtype, np.floating):
        raise ValueError(f"face_warp: {name} must be (N, 3) float, got {v.shape} {v.dtype}")
    if n is not None and v.shape[0] != n:
        raise ValueError(f"face_warp: {name} must have {n} rows like source, got {v.shape[0]}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"face_warp: {name} contain NaN or inf")
    return np.ascontiguousarray(v, np.float32)


def _continue_field(field: np.ndarray, covered: np.ndarray) -> tuple[np.ndarray, float]:
    """(h, w, 2) float32: ``field`` continued smoothly from the covered pixels over the whole window
    (a harmonic continuation at a reduced scale, bilinearly upsampled), and the scale factor used."""
    h, w = covered.shape
    d = max(1.0, max(h, w) / FIELD_SIDE)
    sw, sh = max(1, int(round(w / d))), max(1, int(round(h / d)))
    wgt = covered.astype(np.float32)
    small_w = cv2.resize(wgt, (sw, sh), interpolation=cv2.INTER_AREA)
    small_f = cv2.resize(field * wgt[..., None], (sw, sh), interpolation=cv2.INTER_AREA)
    known = small_w > 1e-6
    small_f = np.where(known[..., None], small_f / np.maximum(small_w, 1e-6)[..., None], 0.0).astype(np.float32)
    filled = harmonic_fill(small_f, known, RELAX_SWEEPS)
    return cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32), d


def face_warp(source: np.ndarray, target: np.ndarray, triangles: np.ndarray, height: int, width: int, *,
              fade: float = FADE_FRACTION) -> Optional[FaceWarp]:
    """The backward displacement field of one face (see the module docstring).

    source:    (N, 3) float image px of the ORIGINAL fit (x right, y down, z larger = nearer)
    target:    (N, 3) float image px of the morphed face at the original pose (same vertex order)
    triangles: (M, 3) int
    height, width: the photo's size; fade: fade radius as a fraction of :func:`face_size`

    Returns None when the morphed face covers no pixel of the photo.
    """
    src = _check_mesh("source", source)
    tgt = _check_mesh("target", target, src.shape[0])
    tris = np.ascontiguousarray(triangles, np.int32)
    if tris.ndim != 2 or tris.shape[1] != 3:
        raise ValueError(f"face_warp: triangles must be (M, 3), got {tris.shape}")
    if not (np.isfinite(fade) and fade >= 0):
        raise ValueError(f"face_warp: fade must be >= 0, got {fade}")
    size = max(face_size(src), face_size(tgt))
    radius = float(fade) * size
    pad = int(np.ceil(radius)) + 2
    both = np.concatenate([src[:, :2], tgt[:, :2]])
    x0 = max(0, int(np.floor(both[:, 0].min())) - pad)
    y0 = max(0, int(np.floor(both[:, 1].min())) - pad)
    x1 = min(int(width), int(np.ceil(both[:, 0].max())) + pad + 1)
    y1 = min(int(height), int(np.ceil(both[:, 1].max())) + pad + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    h, w = y1 - y0, x1 - x0
    off = np.array([x0, y0, 0], np.float32)
    scale = min(1.0, MAX_SIDE / max(h, w))
    if scale < 1.0:  # a large face: the field at a reduced scale, upsampled
        hs, ws = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        k = np.float32(scale)
        low = _field(((src - off) + 0.5) * k - 0.5, ((tgt - off) + 0.5) * k - 0.5, tris, hs, ws, radius * scale)
        if low is None:
            return None
        field_s, weight_s, covered_s, exact_s, hidden_s, r = low
        field = cv2.resize(field_s, (w, h), interpolation=cv2.INTER_LINEAR) / k
        weight = cv2.resize(weight_s, (w, h), interpolation=cv2.INTER_LINEAR)
        covered, exact, hidden = (cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
                                  for m in (covered_s, exact_s, hidden_s))
        field[weight <= 0] = 0.0
        return FaceWarp(window=(x0, y0, x1, y1), field=field.astype(np.float32), weight=weight, covered=covered,
                        exact=exact, hidden=hidden & covered, raster=r, depth=size, scale=float(scale))
    full = _field(src - off, tgt - off, tris, h, w, radius)
    if full is None:
        return None
    field, weight, covered, exact, hidden, r = full
    return FaceWarp(window=(x0, y0, x1, y1), field=field, weight=weight, covered=covered, exact=exact,
                    hidden=hidden, raster=r, depth=size)


def _field(src_local: np.ndarray, tgt_local: np.ndarray, tris: np.ndarray, h: int, w: int, radius: float):
    """(field, weight, covered, exact, hidden, raster) of :class:`FaceWarp` for meshes already in the
    window's pixel frame of size (h, w); None when the target covers no pixel."""
    r = rasterize(np.ascontiguousarray(tgt_local, np.float32), tris, h, w)
    covered = r.tri_id >= 0
    if not covered.any():
        return None
    # exact backward field on the morphed face: the source position of the surface point seen at q
    src_local = np.ascontiguousarray(src_local, np.float32)
    attrs = np.ascontiguousarray(src_local, np.float64)
    pos = interpolate(r, attrs)  # (h, w, 3): source x, y (window px) and source depth
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    exact = np.zeros((h, w, 2), np.float32)
    exact[..., 0] = np.where(covered, pos[..., 0] - grid_x, 0.0)
    exact[..., 1] = np.where(covered, pos[..., 1] - grid_y, 0.0)

    # hidden in the original: the point lies behind the original fit's own z-buffer at its source pixel
    zbuf = rasterize(src_local, tris, h, w).depth
    sx = np.clip(np.rint(pos[..., 0]), 0, w - 1).astype(np.intp)
    sy = np.clip(np.rint(pos[..., 1]), 0, h - 1).astype(np.intp)
    zr = float(np.ptp(src_local[:, 2])) if len(src_local) else 1.0
    tol = max(HIDDEN_TOLERANCE * zr, 1.0)
    zs = zbuf[sy, sx]
    hidden = covered & np.isfinite(zs) & (pos[..., 2] < zs - tol)

    cont, cell = _continue_field(exact, covered)
    outside = cv2.distanceTransform((~covered).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    inside = cv2.distanceTransform(covered.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    band = BLEND_CELLS * cell
    t_in = np.clip(inside / np.float32(band), 0.0, 1.0) if band > 0 else covered.astype(np.float32)
    s_in = (t_in * t_in * (3.0 - 2.0 * t_in))[..., None]  # 0 at the outline -> 1 deep inside
    if radius > 0:
        t_out = np.clip(1.0 - outside / np.float32(radius), 0.0, 1.0)
        fade_w = t_out * t_out * (3.0 - 2.0 * t_out)
    else:
        fade_w = covered.astype(np.float32)
    weight = np.where(covered, 1.0, fade_w).astype(np.float32)
    field = np.where(covered[..., None], s_in * exact + (1.0 - s_in) * cont, cont * fade_w[..., None])
    field[weight <= 0] = 0.0
    return field.astype(np.float32), weight, covered, covered & (inside >= band), hidden, r


def _groups(warps: Sequence[FaceWarp]) -> list[list[int]]:
    """Indices of the warps grouped by overlapping windows (connected components)."""
    n = len(warps)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        a = warps[i].window
        for j in range(i + 1, n):
            b = warps[j].window
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                parent[find(i)] = find(j)
    out: dict[int, list[int]] = {}
    for i in range(n):
        out.setdefault(find(i), []).append(i)
    return list(out.values())


def _merged_field(warps: Sequence[FaceWarp]) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """One backward field over the union of the windows of ``warps`` (see the module docstring)."""
    x0 = min(wp.window[0] for wp in warps)
    y0 = min(wp.window[1] for wp in warps)
    x1 = max(wp.window[2] for wp in warps)
    y1 = max(wp.window[3] for wp in warps)
    h, w = y1 - y0, x1 - x0
    if len(warps) == 1:
        return warps[0].window, warps[0].field
    num = np.zeros((h, w, 2), np.float32)
    den = np.zeros((h, w), np.float32)
    on_face = np.zeros((h, w), bool)
    face_field = np.zeros((h, w, 2), np.float32)
    for wp in sorted(warps, key=lambda q: q.depth):  # nearer faces last: they win where faces overlap
        a0, b0, a1, b1 = wp.window
        sl = (slice(b0 - y0, b1 - y0), slice(a0 - x0, a1 - x0))
        off = ~wp.covered
        num[sl][off] += wp.field[off] * wp.weight[off][:, None]
        den[sl][off] += wp.weight[off]
        face_field[sl][wp.covered] = wp.field[wp.covered]
        on_face[sl] |= wp.covered
    field = num / np.maximum(den, 1.0)[..., None]
    field[on_face] = face_field[on_face]
    return (x0, y0, x1, y1), field


def _backward_maps(window: tuple[int, int, int, int], field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = window
    return (field[..., 0] + np.arange(x0, x1, dtype=np.float32)[None, :],
            field[..., 1] + np.arange(y0, y1, dtype=np.float32)[:, None])


def warp_image(rgb: np.ndarray, warps: Sequence[Optional[FaceWarp]], *,
               interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Apply the faces' backward fields to ``rgb`` ((H, W, C) uint8); returns a new image.

    Pixels where every field is 0 (beyond the fade radius of every face) are copied unchanged, so they
    are bit-identical to the input. Bicubic sampling keeps the skin's grain (one resampling only).
    """
    img = np.asarray(rgb)
    out = img.copy()
    ws = [wp for wp in warps if wp is not None]
    for group in _groups(ws):
        window, field = _merged_field([ws[i] for i in group])
        x0, y0, x1, y1 = window
        mapx, mapy = _backward_maps(window, field)
        warped = cv2.remap(img, mapx, mapy, interpolation, borderMode=cv2.BORDER_REFLECT_101)
        moved = np.any(field != 0.0, axis=2)
        region = out[y0:y1, x0:x1]
        region[moved] = warped[moved]
    return out


def warp_mask(mask: np.ndarray, warps: Sequence[Optional[FaceWarp]]) -> np.ndarray:
    """A (H, W) bool mask moved with the same fields (nearest neighbour), e.g. the removed pixels."""
    m = np.asarray(mask, bool)
    out = m.copy()
    ws = [wp for wp in warps if wp is not None]
    src = m.astype(np.uint8)
    for group in _groups(ws):
        window, field = _merged_field([ws[i] for i in group])
        x0, y0, x1, y1 = window
        mapx, mapy = _backward_maps(window, field)
        warped = cv2.remap(src, mapx, mapy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101) > 0
        moved = np.any(field != 0.0, axis=2)
        region = out[y0:y1, x0:x1]
        region[moved] = warped[moved]
    return out
