"""Mesh topology helpers shared by the backends: boundary loops and capping the mouth opening.

Both face models are open surfaces: one long outer boundary (forehead, cheeks, jaw) and, inside it,
the opening between the lips (the no-neck BFM: a loop of 78 vertices). Left open, that hole is
background for every stage that rasterizes the mesh: the visible label map has no lip label there,
so the teeth between parted lips were never removed (an edge of the teeth stayed visible at a mouth
corner), the frontal render showed a white gap between the lips, and the texture had no texels for
the mouth. :func:`cap_inner_holes` closes every inner loop with a strip of triangles built from the
loop's own vertices, so no vertex, UV or label is added: the cap takes the lip labels and UVs of
its corners.
"""

from __future__ import annotations

import numpy as np

from faceanon.cache import BoundedCache, content_digest

__all__ = ["boundary_loops", "cap_inner_holes", "closed_triangles"]


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """The boundary loops of a triangle mesh, longest first.

    triangles: (M, 3) int. A boundary edge is an edge used by exactly one triangle; the loops follow
    the triangles' winding (edge a -> b of the triangle that owns it). Returns a list of (K,) int64
    vertex loops (first vertex not repeated). Vertices where several loops touch are followed
    greedily; every boundary edge belongs to exactly one returned loop.
    """
    t = np.asarray(triangles, np.int64)
    if t.ndim != 2 or t.shape[1] != 3:
        raise ValueError(f"triangles must be (M, 3), got {t.shape}")
    if t.size == 0:
        return []
    edges = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    key = np.sort(edges, axis=1)
    n = int(t.max()) + 1
    code = key[:, 0] * n + key[:, 1]
    _, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
    boundary = edges[counts[inverse] == 1]
    succ: dict[int, list[int]] = {}
    for a, b in boundary.tolist():
        succ.setdefault(a, []).append(b)
    loops: list[np.ndarray] = []
    while succ:
        start = next(iter(succ))
        loop = [start]
        cur = start
        while True:
            nxt = succ[cur].pop()
            if not succ[cur]:
                del succ[cur]
            if nxt == start:
                break
            loop.append(nxt)
            cur = nxt
            if cur not in succ:  # an open chain (non-manifold input): stop here
                break
        loops.append(np.asarray(loop, np.int64))
    loops.sort(key=len, reverse=True)
    return loops


def _cap_loop(vertices: np.ndarray, triangles: np.ndarray, loop: np.ndarray) -> np.ndarray:
    """Triangles closing one boundary loop: a zipper between its two halves along the loop's
    principal axis (the mouth's width), wound like the surrounding mesh. Returns (K - 2, 3) int64."""
    p = vertices[loop].astype(np.float64)
    centred = p - p.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = centred @ vt[0]
    k = len(loop)
    i0, i1 = int(np.argmin(axis)), int(np.argmax(axis))
    # the two chains from the first extreme to the second, each running along +axis
    a = [loop[(i0 + s) % k] for s in range((i1 - i0) % k + 1)]
    b = [loop[(i0 - s) % k] for s in range((i0 - i1) % k + 1)]
    pos = {int(v): float(x) for v, x in zip(loop, axis)}
    tris = []
    i = j = 0
    while i < len(a) - 1 or j < len(b) - 1:
        advance_a = j >= len(b) - 1 or (i < len(a) - 1 and pos[int(a[i + 1])] <= pos[int(b[j + 1])])
        if advance_a:
            tris.append((a[i], b[j], a[i + 1]))
            i += 1
        else:
            tris.append((a[i], b[j], b[j + 1]))
            j += 1
    cap = np.asarray(tris, np.int64)
    cap = cap[(cap[:, 0] != cap[:, 1]) & (cap[:, 1] != cap[:, 2]) & (cap[:, 0] != cap[:, 2])]
    # wind the cap like the mesh around it: its normals agree with the ring of triangles that own the loop
    on_loop = np.isin(np.asarray(triangles, np.int64), loop).any(axis=1)
    ring = np.asarray(triangles, np.int64)[on_loop]
    v = vertices.astype(np.float64)
    ring_n = np.cross(v[ring[:, 1]] - v[ring[:, 0]], v[ring[:, 2]] - v[ring[:, 0]]).sum(axis=0)
    cap_n = np.cross(v[cap[:, 1]] - v[cap[:, 0]], v[cap[:, 2]] - v[cap[:, 0]])
    flip = cap_n @ ring_n < 0
    cap[flip] = cap[flip][:, ::-1]
    return cap


def cap_inner_holes(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """``triangles`` followed by caps closing every boundary loop but the longest (the outer one).

    vertices: (N, 3) float, a representative shape of the mesh (the mean face: the cap is built in its
    geometry once and reused for every fitted face of the same topology); triangles: (M, 3) int.
    Returns (M + C, 3) int32; the first M rows are ``triangles`` unchanged.
    """
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {v.shape}")
    loops = boundary_loops(t)
    caps = [_cap_loop(v, t, loop) for loop in loops[1:] if len(loop) >= 3]
    if not caps:
        return np.ascontiguousarray(t, np.int32)
    return np.ascontiguousarray(np.concatenate([np.asarray(t, np.int64)] + caps), np.int32)


_CACHE: BoundedCache[np.ndarray] = BoundedCache(5)


def closed_triangles(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """:func:`cap_inner_holes`, computed once per (shape, topology) in the process (read-only result)."""
    t = np.ascontiguousarray(triangles)
    v = np.ascontiguousarray(vertices)

    def build() -> np.ndarray:
        capped = cap_inner_holes(v, t)
        capped.setflags(write=False)
        return capped

    return _CACHE.get_or_build(content_digest(t, v), build)
