"""The project's triangle rasterizer: triangles -> per-pixel triangle id, barycentrics and depth.

Conventions (faceanon/types.py):

* screen space: x right, y down; the centre of pixel (row i, col j) is the point (x=j, y=i);
* z is depth with LARGER z = NEARER: the rasterizer keeps the largest interpolated z.

Coverage: a pixel is covered iff its centre is inside the triangle, with the top-left fill rule
for centres exactly on an edge, so that a mesh is watertight: two triangles sharing an edge
never both cover, nor both miss, a centre on that edge.  Both windings are drawn unless ``cull``
says otherwise.  Vertex x/y are snapped to a 1/256 px grid and the coverage is decided with exact
integer arithmetic on the snapped coordinates; the snapping moves a vertex by at most 1/512 px.
Triangles whose snapped area is zero, with a non-finite vertex (NaN/inf in x, y or z) or a vertex
farther than 2**40 px from the origin draw nothing.  Triangles partly or entirely outside the
target are clipped to it; there is no border special case.

Depth test: the largest interpolated z (compared as float32, the value returned in ``depth``)
wins; ties go to the lower triangle index.  The result does not depend on the thread count.

Barycentrics are screen-space linear (no perspective correction), weights of the triangle's
vertices in the order they appear in ``triangles``.

Example::

    r = rasterize(vertices, triangles, h, w, cull="back")
    uv_image = interpolate(r, uv)          # (h, w, 2) float32, 0 outside the mesh
    visible = np.unique(r.tri_id[r.mask])  # ids of the triangles that won at least one pixel
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

try:
    from faceanon._ext import _raster
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "faceanon's compiled rasterizer (faceanon._ext._raster) is not built: "
        "run `python setup.py build_ext --inplace` in a source checkout, or reinstall faceanon "
        f"with `pip install .` ({exc})"
    ) from exc

__all__ = ["RasterResult", "rasterize", "interpolate", "MAX_IMAGE_SIDE"]

MAX_IMAGE_SIDE: int = int(_raster.MAX_IMAGE_SIDE)
_CULL = {None: _raster.CULL_NONE, "back": _raster.CULL_BACK, "front": _raster.CULL_FRONT}


@dataclass(eq=False)
class RasterResult:
    """Per-pixel output of :func:`rasterize` for an (H, W) target.

    tri_id:    (H, W) int32, index of the visible triangle, -1 where empty
    bary:      (H, W, 3) float32, barycentric weights of that triangle's 3 vertices (screen-space
               linear, summing to 1 up to rounding), 0 where empty
    depth:     (H, W) float32, interpolated z of the visible triangle, -inf where empty
    triangles: (M, 3) int32, the triangles that were drawn (used by :func:`interpolate`)
    num_vertices: N, the number of vertices the triangles index into

    :func:`interpolate` reads only ``tri_id``, ``bary``, ``triangles`` and ``num_vertices``, so a
    cached layout can be re-wrapped as ``RasterResult(tri_id, bary, None, triangles, n)``.
    """

    tri_id: np.ndarray
    bary: np.ndarray
    depth: np.ndarray
    triangles: np.ndarray
    num_vertices: int

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels covered by some triangle."""
        return self.tri_id >= 0

    @property
    def height(self) -> int:
        return int(self.tri_id.shape[0])

    @property
    def width(self) -> int:
        return int(self.tri_id.shape[1])


def _check_size(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if not 1 <= value <= MAX_IMAGE_SIDE:
        raise ValueError(f"{name} must be in [1, {MAX_IMAGE_SIDE}], got {value}")
    return value


def _check_vertices(vertices) -> np.ndarray:
    if not isinstance(vertices, np.ndarray):
        raise ValueError(f"vertices must be a numpy array of shape (N, 3), got {type(vertices).__name__}")
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (N, 3), got {vertices.shape}")
    if not np.issubdtype(vertices.dtype, np.floating):
        raise ValueError(f"vertices must be a float array (float32 preferred), got dtype {vertices.dtype}")
    return np.ascontiguousarray(vertices, dtype=np.float32)


def _check_triangles(triangles, num_vertices: int) -> np.ndarray:
    if not isinstance(triangles, np.ndarray):
        raise ValueError(f"triangles must be a numpy array of shape (M, 3), got {type(triangles).__name__}")
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError(f"triangles must have shape (M, 3), got {triangles.shape}")
    if triangles.dtype == np.bool_ or not np.issubdtype(triangles.dtype, np.integer):
        raise ValueError(f"triangles must be an integer array (int32 or int64), got dtype {triangles.dtype}")
    if triangles.size:
        lo, hi = int(triangles.min()), int(triangles.max())
        if lo < 0 or hi >= num_vertices:
            bad = lo if lo < 0 else hi
            raise ValueError(f"triangles holds vertex index {bad}, outside [0, {num_vertices}) for "
                             f"{num_vertices} vertices")
    return np.ascontiguousarray(triangles, dtype=np.int32)


def _check_threads(threads) -> int:
    if threads is None:
        return 0
    if isinstance(threads, (bool, np.bool_)) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be None or a positive integer, got {threads!r}")
    return int(threads)


def rasterize(vertices: np.ndarray, triangles: np.ndarray, height: int, width: int, *,
              cull: str | None = None, threads: int | None = None) -> RasterResult:
    """Rasterize a triangle mesh given in screen space.

    vertices:  (N, 3) float32 (any float dtype is converted): x right, y down in px with pixel
               centres at integer coordinates, z depth (larger = nearer)
    triangles: (M, 3) int32 (any integer dtype is converted), indices into ``vertices``
    height, width: size of the target in px, each in [1, MAX_IMAGE_SIDE]
    cull:      None (draw both windings), "back" (draw only triangles with image-space signed
               area ``(x1-x0)*(y2-y0) - (x2-x0)*(y1-y0)`` < 0, front-facing in the project
               convention) or "front" (only area > 0)
    threads:   None picks automatically (several threads for large targets); any value gives the
               same result

    The C++ core runs with the GIL released.  Raises ValueError (naming the argument) on bad input.
    """
    if cull not in _CULL:
        raise ValueError(f"cull must be None, 'back' or 'front', got {cull!r}")
    height = _check_size("height", height)
    width = _check_size("width", width)
    verts = _check_vertices(vertices)
    tris = _check_triangles(triangles, len(verts))
    num_threads = _check_threads(threads)
    tri_id, bary, depth = _raster.rasterize(verts, tris, height, width, _CULL[cull], num_threads)
    return RasterResult(tri_id=tri_id, bary=bary, depth=depth, triangles=tris, num_vertices=len(verts))


def interpolate(r: RasterResult, attrs: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Blend per-vertex attributes with the barycentrics of a :class:`RasterResult`.

    attrs: (N, C) or (N,) numeric (float, int or bool), N = ``r.num_vertices``
    returns (H, W, C) or (H, W) float32; 0 where ``r.tri_id`` is -1.  Accumulated in float64.
    """
    if not isinstance(r, RasterResult):
        raise ValueError(f"r must be a RasterResult from rasterize(), got {type(r).__name__}")
    if not isinstance(attrs, np.ndarray):
        raise ValueError(f"attrs must be a numpy array of shape (N, C) or (N,), got {type(attrs).__name__}")
    if attrs.ndim not in (1, 2):
        raise ValueError(f"attrs must have shape (N, C) or (N,), got {attrs.shape}")
    if attrs.shape[0] != r.num_vertices:
        raise ValueError(f"attrs has {attrs.shape[0]} rows but the mesh has {r.num_vertices} vertices")
    if not (np.issubdtype(attrs.dtype, np.floating) or np.issubdtype(attrs.dtype, np.integer)
            or attrs.dtype == np.bool_):
        raise ValueError(f"attrs must be a real numeric array, got dtype {attrs.dtype}")
    num_threads = _check_threads(threads)
    flat = np.ascontiguousarray(attrs.reshape(attrs.shape[0], -1), dtype=np.float64)
    out = _raster.interpolate(
        np.ascontiguousarray(r.tri_id, dtype=np.int32),
        np.ascontiguousarray(r.bary, dtype=np.float32),
        np.ascontiguousarray(r.triangles, dtype=np.int32),
        flat,
        num_threads,
    )
    return out[..., 0] if attrs.ndim == 1 else out


def resolve_supersampled(r: RasterResult, k: int, attrs: np.ndarray, *,
                         threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliasing resolve of a raster drawn at ``k`` times the wanted size.

    r: a :func:`rasterize` result of (h*k, w*k); attrs: (N, C) per-vertex attributes.
    Returns ``(alpha, mean)``: alpha (h, w) float32 = covered fraction of each pixel's k x k
    samples; mean (h, w, C) float32 = mean of the interpolated attributes over the covered samples
    (0 where none is covered). Equals ``interpolate`` followed by k x k block means, in one pass.
    """
    if not isinstance(r, RasterResult):
        raise ValueError(f"r must be a RasterResult from rasterize(), got {type(r).__name__}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if r.tri_id.shape[0] % k or r.tri_id.shape[1] % k:
        raise ValueError(f"the raster's size {r.tri_id.shape} is not a multiple of k={k}")
    a = np.asarray(attrs)
    if a.ndim != 2 or a.shape[0] != r.num_vertices:
        raise ValueError(f"attrs must have shape ({r.num_vertices}, C), got {a.shape}")
    return _raster.resolve_supersampled(
        np.ascontiguousarray(r.tri_id, dtype=np.int32), np.ascontiguousarray(r.bary, dtype=np.float32),
        int(k), np.ascontiguousarray(r.triangles, dtype=np.int32), np.ascontiguousarray(a, dtype=np.float64),
        _check_threads(threads))


def format_rows(values: np.ndarray, precision: int, prefix: str) -> str:
    """``"".join(f"{prefix} {v0:.{p}f} {v1:.{p}f} ...\\n" for each row)`` in C++ (~10x faster).

    values: (N, C) finite numbers. The digits are exactly those of Python's ``%.{p}f``.
    """
    v = np.ascontiguousarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be 2-D, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values must be finite")
    return _raster.format_rows(v, int(precision), prefix.encode("ascii")).decode("ascii")
