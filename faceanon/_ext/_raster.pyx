# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# distutils: language = c++
"""Thin Cython bridge to raster_core.cpp (private: use faceanon.raster).

The functions here trust their callers for dtypes and C-contiguity (enforced by the typed
memoryviews) and for index ranges only as far as memory safety goes: the C++ core skips
triangles with out-of-range vertex indices instead of reading out of bounds.  Argument
validation with helpful messages lives in faceanon/raster.py.
"""

from libc.stdint cimport int32_t, int64_t

import numpy as np

cdef extern from "raster_core.hpp" namespace "faceanon::raster" nogil:
    int kCullNone
    int kCullBack
    int kCullFront
    int64_t kMaxImageSide
    double kMaxAbsCoord
    int kSubpixelBits
    int auto_num_threads(int64_t height, int64_t width, int64_t num_triangles) noexcept
    void c_rasterize "faceanon::raster::rasterize"(
        const float* vertices, int64_t num_vertices, const int32_t* triangles,
        int64_t num_triangles, int64_t height, int64_t width, int cull, int num_threads,
        int32_t* tri_id, float* bary, float* depth) noexcept
    void c_interpolate "faceanon::raster::interpolate"(
        const int32_t* tri_id, const float* bary, int64_t num_pixels,
        const int32_t* triangles, int64_t num_triangles, const double* attrs,
        int64_t num_vertices, int64_t channels, int num_threads, float* out) noexcept

CULL_NONE = kCullNone
CULL_BACK = kCullBack
CULL_FRONT = kCullFront
MAX_IMAGE_SIDE = kMaxImageSide
MAX_ABS_COORD = kMaxAbsCoord
SUBPIXEL_BITS = kSubpixelBits


def default_threads(int64_t height, int64_t width, int64_t num_triangles):
    """Thread count rasterize() picks for num_threads=0 with this workload."""
    return auto_num_threads(height, width, num_triangles)


def rasterize(const float[:, ::1] vertices not None, const int32_t[:, ::1] triangles not None,
              int64_t height, int64_t width, int cull=0, int num_threads=0):
    """Return (tri_id (H,W) int32, bary (H,W,3) float32, depth (H,W) float32).

    vertices (N, 3) float32 and triangles (M, 3) int32, both C-contiguous.
    """
    if vertices.shape[1] != 3 or triangles.shape[1] != 3:
        raise ValueError("vertices and triangles must have 3 columns")
    if not (1 <= height <= kMaxImageSide and 1 <= width <= kMaxImageSide):
        raise ValueError(f"height and width must be in [1, {kMaxImageSide}]")
    if cull not in (kCullNone, kCullBack, kCullFront):
        raise ValueError(f"unknown cull mode {cull}")
    # The C++ core initialises every output element itself (in parallel, by the owning thread).
    tri_id = np.empty((height, width), dtype=np.int32)
    bary = np.empty((height, width, 3), dtype=np.float32)
    depth = np.empty((height, width), dtype=np.float32)
    cdef int32_t[:, ::1] tid_v = tri_id
    cdef float[:, :, ::1] bary_v = bary
    cdef float[:, ::1] depth_v = depth
    cdef const float* vptr = &vertices[0, 0] if vertices.shape[0] > 0 else NULL
    cdef const int32_t* tptr = &triangles[0, 0] if triangles.shape[0] > 0 else NULL
    cdef int64_t nv = vertices.shape[0]
    cdef int64_t nt = triangles.shape[0]
    with nogil:
        c_rasterize(vptr, nv, tptr, nt, height, width, cull, num_threads,
                    &tid_v[0, 0], &bary_v[0, 0, 0], &depth_v[0, 0])
    return tri_id, bary, depth


def interpolate(const int32_t[:, ::1] tri_id not None, const float[:, :, ::1] bary not None,
                const int32_t[:, ::1] triangles not None, const double[:, ::1] attrs not None,
                int num_threads=0):
    """Return (H, W, C) float32: barycentric blend of attrs (N, C) float64 over tri_id/bary."""
    cdef int64_t h = tri_id.shape[0], w = tri_id.shape[1]
    if bary.shape[0] != h or bary.shape[1] != w or bary.shape[2] != 3:
        raise ValueError("bary must have shape (H, W, 3) matching tri_id")
    if triangles.shape[1] != 3:
        raise ValueError("triangles must have 3 columns")
    cdef int64_t c = attrs.shape[1]
    out = np.empty((h, w, c), dtype=np.float32)
    if h == 0 or w == 0 or c == 0:
        out[...] = 0
        return out
    cdef float[:, :, ::1] out_v = out
    cdef const int32_t* tptr = &triangles[0, 0] if triangles.shape[0] > 0 else NULL
    cdef const double* aptr = &attrs[0, 0] if attrs.shape[0] > 0 else NULL
    cdef int64_t nt = triangles.shape[0]
    cdef int64_t nv = attrs.shape[0]
    with nogil:
        c_interpolate(&tri_id[0, 0], &bary[0, 0, 0], h * w, tptr, nt, aptr, nv, c,
                      num_threads, &out_v[0, 0, 0])
    return out
