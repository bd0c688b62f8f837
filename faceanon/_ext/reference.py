"""Pure-numpy reference rasterizer: slow, written to be obviously correct, used by the tests.

It implements the same contract as the C++ core (faceanon/_ext/raster_core.cpp), but
independently and in the most direct way: for each triangle, in index order, evaluate the three
edge functions *directly* (no incremental stepping) at every pixel centre of its clamped bounding
box, apply the top-left rule, and run the depth test against the buffers.

Contract (shared with faceanon.raster.rasterize):

* pixel (row i, col j) is sampled at the point (x=j, y=i);
* vertex x/y are snapped to a 1/256 px grid (``rint(x * 256)``, round half to even); all coverage
  decisions are exact integer arithmetic on the snapped coordinates (int64 when it provably cannot
  overflow, Python integers otherwise);
* a centre exactly on an edge is covered iff the edge is a top or left edge: with the edge
  oriented so that the inside is on its positive side, ``dy < 0`` (left) or ``dy == 0 and dx > 0``
  (top), y pointing down;
* triangles with zero snapped area, a non-finite vertex, or a vertex with ``|x|`` or ``|y|`` above
  ``MAX_ABS_COORD`` are skipped; ``cull="back"`` skips snapped area >= 0, ``"front"`` area <= 0;
* barycentric weight of vertex k = ``float64(E_k) * (1 / float64(|area|))``; depth =
  ``float32(w0*z0 + w1*z1 + w2*z2)`` evaluated in float64 left to right;
* the depth test is on the float32 depth: a pixel takes the triangle if it is empty or if the new
  depth is strictly larger, so ties go to the lower triangle index.
"""

from __future__ import annotations

import numpy as np

SUBPIXEL = 256
MAX_ABS_COORD = 2.0**40
# int64 is safe when every |snapped coordinate| <= 2**29 and the image sides are <= 2**20.
_INT64_SAFE_COORD = 2**29
_INT64_SAFE_SIDE = 2**20


def _is_top_left(dx: int, dy: int) -> bool:
    return dy < 0 or (dy == 0 and dx > 0)


def rasterize_reference(vertices, triangles, height: int, width: int, cull: str | None = None):
    """Return (tri_id (H,W) int32, bary (H,W,3) float32, depth (H,W) float32)."""
    vertices = np.asarray(vertices, dtype=np.float32).reshape(-1, 3)
    triangles = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    tri_id = np.full((height, width), -1, dtype=np.int32)
    bary = np.zeros((height, width, 3), dtype=np.float32)
    depth = np.full((height, width), -np.inf, dtype=np.float32)
    n = len(vertices)

    for t, tri in enumerate(triangles):
        if np.any(tri < 0) or np.any(tri >= n):
            continue
        p = vertices[tri].astype(np.float64)  # (3, 3): x, y, z of the triangle's vertices
        if not np.all(np.isfinite(p)) or np.any(np.abs(p[:, :2]) > MAX_ABS_COORD):
            continue
        xs = [int(v) for v in np.rint(p[:, 0] * SUBPIXEL)]
        ys = [int(v) for v in np.rint(p[:, 1] * SUBPIXEL)]
        zs = p[:, 2]

        area = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (xs[2] - xs[0]) * (ys[1] - ys[0])
        if area == 0:
            continue
        if cull == "back" and area >= 0:
            continue
        if cull == "front" and area <= 0:
            continue

        # Pixel centres j with min(xs) <= 256*j <= max(xs), clamped to the image (same for rows).
        j0 = max(0, -((-min(xs)) // SUBPIXEL))
        j1 = min(width - 1, max(xs) // SUBPIXEL)
        i0 = max(0, -((-min(ys)) // SUBPIXEL))
        i1 = min(height - 1, max(ys) // SUBPIXEL)
        if j0 > j1 or i0 > i1:
            continue

        safe = max(map(abs, xs + ys)) <= _INT64_SAFE_COORD and max(height, width) <= _INT64_SAFE_SIDE
        dtype = np.int64 if safe else object
        jj, ii = np.meshgrid(np.arange(j0, j1 + 1), np.arange(i0, i1 + 1))
        px = (jj * SUBPIXEL).astype(dtype)
        py = (ii * SUBPIXEL).astype(dtype)

        inside = np.ones(jj.shape, dtype=bool)
        weights = []
        for k in range(3):
            # Edge opposite vertex k, oriented so that the inside is positive.
            a, b = (k + 1) % 3, (k + 2) % 3
            if area < 0:
                a, b = b, a
            dx, dy = xs[b] - xs[a], ys[b] - ys[a]
            e = dx * (py - ys[a]) - dy * (px - xs[a])
            inside &= (e >= 0) if _is_top_left(dx, dy) else (e > 0)
            weights.append(e)
        if not inside.any():
            continue

        inv_area = 1.0 / float(abs(area))
        w = [np.asarray(e, dtype=np.float64) * inv_area for e in weights]
        z = (w[0] * zs[0] + w[1] * zs[1] + w[2] * zs[2]).astype(np.float32)

        win_id = tri_id[i0 : i1 + 1, j0 : j1 + 1]
        win_depth = depth[i0 : i1 + 1, j0 : j1 + 1]
        win_bary = bary[i0 : i1 + 1, j0 : j1 + 1]
        take = inside & ((win_id < 0) | (z > win_depth))
        win_id[take] = t
        win_depth[take] = z[take]
        for k in range(3):
            win_bary[..., k][take] = w[k][take].astype(np.float32)

    return tri_id, bary, depth


def interpolate_reference(tri_id, bary, triangles, attrs):
    """(H, W, C) float32 = sum_k bary[..., k] * attrs[triangles[tri_id, k]], 0 where tri_id < 0."""
    attrs = np.asarray(attrs, dtype=np.float64)
    squeeze = attrs.ndim == 1
    attrs = attrs.reshape(len(attrs), -1)
    out = np.zeros(tri_id.shape + (attrs.shape[1],), dtype=np.float64)
    mask = tri_id >= 0
    corners = np.asarray(triangles)[tri_id[mask]]  # (K, 3)
    w = bary[mask].astype(np.float64)  # (K, 3)
    out[mask] = sum(w[:, k : k + 1] * attrs[corners[:, k]] for k in range(3))
    out = out.astype(np.float32)
    return out[..., 0] if squeeze else out
