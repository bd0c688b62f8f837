// faceanon's triangle rasterizer: triangles -> per-pixel triangle id, barycentrics, depth.
//
// Everything here is plain C++17 with no Python dependency; `_raster.pyx` calls it with the GIL
// released.  Conventions (shared with faceanon/raster.py and faceanon/_ext/reference.py):
//
//  * screen space: x right, y down, the centre of pixel (row i, col j) is the point (x=j, y=i);
//  * a pixel is covered iff its centre lies inside the triangle, with the top-left fill rule on
//    the edges (two triangles sharing an edge never both cover, nor both miss, a centre on it);
//  * vertex x/y are snapped to a 1/256 px grid and every coverage decision is made with exact
//    integer arithmetic on the snapped coordinates (see raster_core.cpp for the justification);
//  * depth: larger z = nearer; the nearest (largest interpolated z, compared as float32) wins and
//    ties go to the lower triangle index;
//  * barycentrics are screen-space linear, weights of the triangle's vertices in stored order.
#pragma once

#include <cstdint>

namespace faceanon {
namespace raster {

// Culling modes (values shared with _raster.pyx).
enum Cull : int {
    kCullNone = 0,
    kCullBack = 1,   // drop triangles with image-space signed area >= 0 (keep front-facing, area < 0)
    kCullFront = 2,  // drop triangles with image-space signed area <= 0 (keep area > 0)
};

// Sub-pixel precision of the snapped vertex grid: 8 bits = 1/256 px (as Direct3D 11).
constexpr int kSubpixelBits = 8;
constexpr int64_t kSubpixelScale = int64_t(1) << kSubpixelBits;

// Vertices with |x| or |y| above this (in px) are treated like non-finite ones: their triangles
// are skipped.  2^40 px is ~1.1e12 px, far beyond anything meaningful in float32 screen space.
constexpr double kMaxAbsCoord = 1099511627776.0;  // 2^40

// Largest supported image side (also bounds the int64 fast path, see raster_core.cpp).
constexpr int64_t kMaxImageSide = int64_t(1) << 20;

// Number of threads `rasterize` uses when asked for 0 ("auto") with this workload.
int auto_num_threads(int64_t height, int64_t width, int64_t num_triangles) noexcept;

// Rasterize `num_triangles` triangles (int32 vertex indices, row-major (M, 3)) of `vertices`
// (float32 row-major (N, 3): x, y, z) into height x width buffers, all written entirely:
//   tri_id (H*W)  : winning triangle index, -1 where empty
//   bary   (H*W*3): barycentric weights (float32) of the winner's vertices 0, 1, 2; 0 where empty
//   depth  (H*W)  : interpolated z of the winner, -inf where empty
// Triangles with an index outside [0, num_vertices), a non-finite or out-of-range vertex, zero
// (snapped) area, or culled by `cull` are skipped.  num_threads <= 0 picks automatically; the
// result does not depend on the number of threads.  Requires 1 <= height, width <= kMaxImageSide.
// Never throws (a failure to start threads falls back to the calling thread).
void rasterize(const float* vertices, int64_t num_vertices, const int32_t* triangles,
               int64_t num_triangles, int64_t height, int64_t width, int cull, int num_threads,
               int32_t* tri_id, float* bary, float* depth) noexcept;

// out[p, c] = sum_k bary[p, k] * attrs[triangles[tri_id[p], k], c] (accumulated in double) where
// tri_id[p] >= 0, else 0.  attrs is float64 row-major (num_vertices, channels), out float32
// (num_pixels, channels).  Pixels whose triangle or vertex index is out of range are written 0.
void interpolate(const int32_t* tri_id, const float* bary, int64_t num_pixels,
                 const int32_t* triangles, int64_t num_triangles, const double* attrs,
                 int64_t num_vertices, int64_t channels, int num_threads, float* out) noexcept;

}  // namespace raster
}  // namespace faceanon
