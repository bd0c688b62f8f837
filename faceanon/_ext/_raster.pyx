# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# distutils: language = c++
"""Thin Cython bridge to raster_core.cpp (private: use faceanon.raster).

The functions here trust their callers for dtypes and C-contiguity (enforced by the typed
memoryviews) and for index ranges only as far as memory safety goes: the C++ core skips
triangles with out-of-range vertex indices instead of reading out of bounds.  Argument
validation with helpful messages lives in faceanon/raster.py.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t
from libcpp.string cimport string

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


cdef extern from "texel_core.hpp" namespace "faceanon::texel" nogil:
    void c_bake_sample "faceanon::texel::bake_sample"(
        const int32_t* tri_id, int64_t rows, int64_t cols, const float* uvpx,
        const int32_t* triangles, int64_t num_triangles, const float* vertices,
        int64_t num_vertices, const uint8_t* front, const float* zbuf, int64_t zh,
        int64_t zw, int64_t zx0, int64_t zy0, float tol, const uint8_t* image, int64_t ih,
        int64_t iw, const uint8_t* valid, int num_threads, uint8_t* out_rgb,
        uint8_t* out_visible) except +
    void c_resolve_supersampled "faceanon::texel::resolve_supersampled"(
        const int32_t* tri_id, const float* bary, int64_t h, int64_t w, int64_t k,
        const int32_t* triangles, int64_t num_triangles, const double* attrs,
        int64_t num_vertices, int64_t channels, int num_threads, float* out_alpha,
        float* out_attr) noexcept
    string c_format_rows "faceanon::texel::format_rows"(
        const double* values, int64_t rows, int64_t cols, int precision, const string& prefix) except +


def bake_sample(const int32_t[:, ::1] tri_id not None, const float[:, ::1] uvpx not None,
                const int32_t[:, ::1] triangles not None, const float[:, ::1] vertices not None,
                const uint8_t[::1] front not None, const float[:, ::1] zbuf not None,
                int64_t zx0, int64_t zy0, float tol, const uint8_t[:, :, ::1] image not None,
                const uint8_t[:, ::1] valid, int num_threads=0):
    """Return (rgb (T, T, 3) uint8, visible (T, T) bool) - see texel_core.hpp."""
    cdef int64_t th = tri_id.shape[0], tw = tri_id.shape[1]
    if uvpx.shape[1] != 2 or uvpx.shape[0] != vertices.shape[0]:
        raise ValueError("uvpx must be (N, 2) with one row per vertex")
    if triangles.shape[1] != 3 or vertices.shape[1] != 3 or image.shape[2] != 3:
        raise ValueError("triangles, vertices and image must have 3 columns/channels")
    if front.shape[0] != triangles.shape[0]:
        raise ValueError("front must have one entry per triangle")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError("image must not be empty")
    if valid is not None and (valid.shape[0] != image.shape[0] or valid.shape[1] != image.shape[1]):
        raise ValueError("valid must have the image's (H, W)")
    rgb = np.empty((th, tw, 3), dtype=np.uint8)
    visible = np.empty((th, tw), dtype=np.bool_)
    if th == 0 or tw == 0:
        return rgb, visible
    cdef uint8_t[:, :, ::1] rgb_v = rgb
    cdef uint8_t[:, ::1] vis_v = visible.view(np.uint8)
    cdef const float* uptr = &uvpx[0, 0] if uvpx.shape[0] > 0 else NULL
    cdef const int32_t* tptr = &triangles[0, 0] if triangles.shape[0] > 0 else NULL
    cdef const float* vptr = &vertices[0, 0] if vertices.shape[0] > 0 else NULL
    cdef const uint8_t* fptr = &front[0] if front.shape[0] > 0 else NULL
    cdef const float* zptr = &zbuf[0, 0] if zbuf.shape[0] > 0 and zbuf.shape[1] > 0 else NULL
    cdef int64_t zh = zbuf.shape[0] if zptr != NULL else 0
    cdef int64_t zw = zbuf.shape[1] if zptr != NULL else 0
    cdef const uint8_t* vldptr = &valid[0, 0] if valid is not None else NULL
    cdef int64_t nt = triangles.shape[0], nv = vertices.shape[0]
    cdef int64_t ih = image.shape[0], iw = image.shape[1]
    with nogil:
        c_bake_sample(&tri_id[0, 0], th, tw, uptr, tptr, nt, vptr, nv, fptr, zptr, zh, zw,
                      zx0, zy0, tol, &image[0, 0, 0], ih, iw, vldptr, num_threads, &rgb_v[0, 0, 0],
                      &vis_v[0, 0])
    return rgb, visible


def resolve_supersampled(const int32_t[:, ::1] tri_id not None, const float[:, :, ::1] bary not None,
                         int64_t k, const int32_t[:, ::1] triangles not None,
                         const double[:, ::1] attrs not None, int num_threads=0):
    """Return (alpha (h, w) float32, attr (h, w, C) float32) from a k-times supersampled raster."""
    if k < 1 or tri_id.shape[0] % k or tri_id.shape[1] % k:
        raise ValueError("the raster's sides must be multiples of k >= 1")
    if bary.shape[0] != tri_id.shape[0] or bary.shape[1] != tri_id.shape[1] or bary.shape[2] != 3:
        raise ValueError("bary must have shape (H, W, 3) matching tri_id")
    if triangles.shape[1] != 3:
        raise ValueError("triangles must have 3 columns")
    cdef int64_t h = tri_id.shape[0] // k, w = tri_id.shape[1] // k, c = attrs.shape[1]
    alpha = np.zeros((h, w), dtype=np.float32)
    attr = np.zeros((h, w, c), dtype=np.float32)
    if h == 0 or w == 0 or c == 0:
        return alpha, attr
    cdef float[:, ::1] alpha_v = alpha
    cdef float[:, :, ::1] attr_v = attr
    cdef const int32_t* tptr = &triangles[0, 0] if triangles.shape[0] > 0 else NULL
    cdef const double* aptr = &attrs[0, 0] if attrs.shape[0] > 0 else NULL
    cdef int64_t nt = triangles.shape[0], nv = attrs.shape[0]
    with nogil:
        c_resolve_supersampled(&tri_id[0, 0], &bary[0, 0, 0], h, w, k, tptr, nt, aptr, nv, c,
                               num_threads, &alpha_v[0, 0], &attr_v[0, 0, 0])
    return alpha, attr


def format_rows(const double[:, ::1] values not None, int precision, bytes prefix):
    """bytes: one line ``prefix v0 v1 ...`` per row, each value as ``%.{precision}f``."""
    if not 0 <= precision <= 17:
        raise ValueError("precision must be in 0..17")
    if values.shape[0] == 0:
        return b""
    cdef string pre = prefix
    return c_format_rows(&values[0, 0], values.shape[0], values.shape[1], precision, pre)
