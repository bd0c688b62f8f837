"""UV texture baking shared by ``reconstruct`` (extractTex) and ``anonymize`` (re-bake).

The bake is per texel, never per triangle in Python:

1. the UV layout is rasterized once per (mesh topology, texture size) and cached: every texel knows
   its triangle and barycentric weights;
2. each texel's position in the photo (and its depth) is interpolated from the per-vertex image
   positions; the photo is sampled there with bilinear interpolation (``cv2.remap``);
3. visibility is decided in IMAGE space with the rasterizer: a texel is taken from the photo only if
   its triangle faces the camera and its depth matches the photo's z-buffer at that pixel (so
   occluded cheeks/nose sides do not receive the occluder's pixels, the seed's bug B6-17), and, when
   a ``valid`` mask is given (the alpha of a segmented image), only where that mask is set;
4. texels that are not visible are filled from the mirror texel (the BFM UV layout is left/right
   symmetric around u = 0.5) when that one is visible, and the rest by a push-pull (pyramid)
   diffusion that also extends colours past the UV islands into a gutter, so bilinear or mip-mapped
   sampling never picks up a black seam (B6-20).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from faceanon.raster import rasterize


@dataclass(frozen=True)
class UVLayout:
    """Per-texel triangle id and barycentrics of a UV atlas (row 0 = v 1)."""

    tri_id: np.ndarray  # (T, T) int32, -1 outside the islands
    bary: np.ndarray  # (T, T, 3) float32
    mirror_texel: np.ndarray | None  # (T, T) int64 flat index of the mirrored texel (u -> 1-u), or None

    @property
    def inside(self) -> np.ndarray:
        return self.tri_id >= 0


def uv_to_pixels(uv: np.ndarray, size: int) -> np.ndarray:
    """UV (u right, v up) -> texel coordinates (x right, y down, texel centres at integers)."""
    px = np.empty((uv.shape[0], 3), np.float32)
    px[:, 0] = uv[:, 0] * (size - 1)
    px[:, 1] = (1.0 - uv[:, 1]) * (size - 1)
    px[:, 2] = 0.0
    return px


_LAYOUT_CACHE: dict[tuple, UVLayout] = {}


def uv_layout(uv: np.ndarray, triangles: np.ndarray, size: int, symmetric: bool = True) -> UVLayout:
    """Rasterize the UV layout once per (uv, triangles, size); later calls hit a small cache."""
    key = (uv.shape, triangles.shape, size, symmetric, _digest(uv), _digest(triangles))
    hit = _LAYOUT_CACHE.get(key)
    if hit is not None:
        return hit
    r = rasterize(uv_to_pixels(uv, size), np.ascontiguousarray(triangles, np.int32), size, size)
    mirror = None
    if symmetric:
        inside = r.tri_id >= 0
        cols = np.arange(size)
        mirrored_cols = (size - 1) - cols
        flat = np.arange(size * size, dtype=np.int64).reshape(size, size)
        mirror = flat[:, mirrored_cols]
        # only meaningful where both the texel and its mirror lie on the islands
        mirror = np.where(inside & inside[:, mirrored_cols], mirror, -1)
    layout = UVLayout(r.tri_id, r.bary, mirror)
    if len(_LAYOUT_CACHE) > 4:
        _LAYOUT_CACHE.pop(next(iter(_LAYOUT_CACHE)))
    _LAYOUT_CACHE[key] = layout
    return layout


def _digest(a: np.ndarray) -> int:
    a = np.ascontiguousarray(a)
    return hash(a.tobytes()[:: max(1, a.nbytes // 4096)]) ^ hash(a.nbytes)


def texel_attributes(layout: UVLayout, triangles: np.ndarray, attrs: np.ndarray) -> np.ndarray:
    """Interpolate per-vertex ``attrs`` (N, C) at every texel inside the islands -> (K, C) float32."""
    inside = layout.inside
    tid = layout.tri_id[inside]
    w = layout.bary[inside]
    corners = triangles[tid]  # (K, 3)
    a = attrs.astype(np.float32, copy=False)
    return (a[corners[:, 0]] * w[:, 0:1] + a[corners[:, 1]] * w[:, 1:2] + a[corners[:, 2]] * w[:, 2:3]).astype(
        np.float32
    )


def visible_texels(
    layout: UVLayout,
    vertices: np.ndarray,
    triangles: np.ndarray,
    height: int,
    width: int,
    *,
    depth_tolerance: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Which texels are visible in the photo, and where they land.

    vertices: (N, 3) image px (x right, y down), larger z nearer. Returns ``(visible (K,) bool,
    xyz (K, 3) float32)`` for the K texels inside the islands (row-major order).
    """
    xyz = texel_attributes(layout, triangles, vertices)
    raster = rasterize(vertices.astype(np.float32, copy=False), triangles, height, width)
    # front-facing triangles: negative image-space signed area (project convention)
    v = vertices
    t = triangles
    area = (v[t[:, 1], 0] - v[t[:, 0], 0]) * (v[t[:, 2], 1] - v[t[:, 0], 1]) - (v[t[:, 2], 0] - v[t[:, 0], 0]) * (
        v[t[:, 1], 1] - v[t[:, 0], 1]
    )
    front = area < 0
    tid = layout.tri_id[layout.inside]
    if depth_tolerance is None:
        zr = float(np.ptp(vertices[:, 2])) if len(vertices) else 1.0
        depth_tolerance = max(0.02 * zr, 1.0)
    xi = np.rint(xyz[:, 0]).astype(np.int64)
    yi = np.rint(xyz[:, 1]).astype(np.int64)
    in_img = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    vis = front[tid] & in_img
    zbuf = np.full(xyz.shape[0], -np.inf, np.float32)
    zbuf[in_img] = raster.depth[yi[in_img], xi[in_img]]
    vis &= xyz[:, 2] >= zbuf - depth_tolerance
    return vis, xyz


def push_pull_fill(color: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill texels with ``weight == 0`` from their surroundings (pyramid push-pull).

    color: (H, W, C) float32; weight: (H, W) float32 in [0, 1]. Known texels are returned unchanged.
    """
    h, w = weight.shape
    levels = []
    c = color * weight[..., None]
    wt = weight.astype(np.float32)
    while True:
        levels.append((c, wt))
        if min(c.shape[0], c.shape[1]) <= 1:
            break
        c = cv2.resize(c, ((c.shape[1] + 1) // 2, (c.shape[0] + 1) // 2), interpolation=cv2.INTER_AREA)
        wt = cv2.resize(wt, ((wt.shape[1] + 1) // 2, (wt.shape[0] + 1) // 2), interpolation=cv2.INTER_AREA)
        if c.ndim == 2:
            c = c[..., None]
    # pull: from coarse to fine, fill missing values with the upsampled coarser estimate
    est_c, est_w = levels[-1]
    est = est_c / np.maximum(est_w, 1e-8)[..., None]
    for c_l, w_l in reversed(levels[:-1]):
        up = cv2.resize(est, (c_l.shape[1], c_l.shape[0]), interpolation=cv2.INTER_LINEAR)
        if up.ndim == 2:
            up = up[..., None]
        mean_l = c_l / np.maximum(w_l, 1e-8)[..., None]
        a = np.clip(w_l, 0.0, 1.0)[..., None]
        est = a * mean_l + (1.0 - a) * up
    out = color.copy()
    missing = weight <= 0
    out[missing] = est[missing]
    return out


def bake_texture(
    image_rgb: np.ndarray,
    vertices: np.ndarray,
    triangles: np.ndarray,
    uv: np.ndarray,
    size: int,
    *,
    valid: np.ndarray | None = None,
    symmetric_fill: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Bake a (size, size, 3) uint8 RGB texture from a photo.

    image_rgb: (H, W, 3) uint8; vertices: (N, 3) float32 image px, larger z nearer; triangles (M, 3)
    int32; uv (N, 2) in [0, 1] (v up); valid: optional (H, W) bool/uint8, pixels allowed as texture
    sources (e.g. alpha > 0 of a segmented image). Returns ``(texture, source)`` where ``source`` is a
    (size, size) uint8 map: 0 = outside the UV islands (gutter), 1 = sampled from the photo,
    2 = mirrored from the symmetric texel, 3 = diffused fill.
    """
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"image_rgb must be (H, W, 3) uint8, got {image_rgb.shape} {image_rgb.dtype}")
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {vertices.shape}")
    if uv.shape != (vertices.shape[0], 2):
        raise ValueError(f"uv must be (N, 2) matching vertices, got {uv.shape}")
    if size < 8:
        raise ValueError(f"texture size must be >= 8, got {size}")
    h, w = image_rgb.shape[:2]
    tris = np.ascontiguousarray(triangles, dtype=np.int32)
    verts = np.ascontiguousarray(vertices, dtype=np.float32)
    layout = uv_layout(np.asarray(uv, np.float32), tris, size, symmetric=symmetric_fill)
    inside = layout.inside
    vis, xyz = visible_texels(layout, verts, tris, h, w)
    if valid is not None:
        xi = np.clip(np.rint(xyz[:, 0]).astype(np.int64), 0, w - 1)
        yi = np.clip(np.rint(xyz[:, 1]).astype(np.int64), 0, h - 1)
        vis &= np.asarray(valid)[yi, xi] > 0

    # bilinear sample of the photo at the texel positions (only the visible ones matter)
    mapx = np.zeros((size, size), np.float32)
    mapy = np.zeros((size, size), np.float32)
    mapx[inside] = xyz[:, 0]
    mapy[inside] = xyz[:, 1]
    sampled = cv2.remap(image_rgb, mapx, mapy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    source = np.zeros((size, size), np.uint8)
    vis_map = np.zeros((size, size), bool)
    vis_map[inside] = vis
    source[vis_map] = 1
    color = sampled.astype(np.float32)
    weight = vis_map.astype(np.float32)

    if symmetric_fill and layout.mirror_texel is not None:
        need = inside & ~vis_map
        m = layout.mirror_texel
        cand = need & (m >= 0)
        mflat = m[cand]
        ok = vis_map.reshape(-1)[mflat]
        rows, cols = np.nonzero(cand)
        rows, cols, mflat = rows[ok], cols[ok], mflat[ok]
        color[rows, cols] = color.reshape(-1, 3)[mflat]
        weight[rows, cols] = 1.0
        source[rows, cols] = 2

    filled = push_pull_fill(color, weight)
    source[inside & (source == 0)] = 3
    texture = np.clip(np.rint(filled), 0, 255).astype(np.uint8)
    return texture, source
