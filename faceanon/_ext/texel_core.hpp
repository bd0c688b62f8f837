// Per-texel and per-pixel kernels built on a raster (tri_id + barycentrics): the texture bake's
// sampling pass, the anti-aliased render's resolve, and the OBJ vertex text. Plain C++17, called
// from _raster.pyx with the GIL released; argument checks live in faceanon/raster.py.
#pragma once

#include <cstdint>
#include <string>

namespace faceanon {
namespace texel {

// The sampling pass of a texture bake, one texel at a time. Texels are the pixels of a UV-atlas
// raster: tri_id (rows x cols) int32, -1 off the islands; uvpx (N x 2) float32 the vertices' texel
// coordinates (x = column, y = row) that raster was drawn from. For each texel on a triangle:
//   xyz      = the triangle's affine map texel -> photo (the barycentric blend of the vertices'
//              photo positions): x right, y down in px, z depth (larger = nearer);
//   visible  = front[tri] != 0
//              and the photo z-buffer (zbuf, zh x zw, covering photo pixels [zx0, zx0+zw) x
//              [zy0, zy0+zh); non-finite = empty) at the texel's nearest pixel (round half to
//              even) is finite with z >= zbuf - tol (outside the window: not visible)
//              and, when valid != nullptr, valid (ih x iw) at that pixel, clamped into the photo,
//              is non-zero;
//   rgb      = the photo (ih x iw x 3 uint8) sampled bilinearly at (x, y), edges replicated,
//              rounded to nearest.
// Off the islands, on a triangle with an index out of range, a non-finite vertex or a degenerate
// UV triangle: rgb 0, not visible. Writes out_rgb (rows*cols*3) and out_visible (rows*cols, 0/1).
// num_threads <= 0 picks automatically. Throws std::bad_alloc when out of memory.
void bake_sample(const int32_t* tri_id, int64_t rows, int64_t cols, const float* uvpx,
                 const int32_t* triangles, int64_t num_triangles, const float* vertices,
                 int64_t num_vertices, const uint8_t* front, const float* zbuf, int64_t zh,
                 int64_t zw, int64_t zx0, int64_t zy0, float tol, const uint8_t* image, int64_t ih,
                 int64_t iw, const uint8_t* valid, int num_threads, uint8_t* out_rgb,
                 uint8_t* out_visible);

// Resolve a k-times supersampled raster (tri_id/bary of (h*k) x (w*k) samples) to h x w pixels:
//   out_alpha[p] = covered samples of pixel p / k^2;
//   out_attr[p, c] = mean over p's covered samples of the barycentric blend of attrs[:, c]
//                    (float64 (num_vertices, channels)), 0 where no sample is covered.
// Samples whose triangle or vertex index is out of range count as empty.
void resolve_supersampled(const int32_t* tri_id, const float* bary, int64_t h, int64_t w, int64_t k,
                          const int32_t* triangles, int64_t num_triangles, const double* attrs,
                          int64_t num_vertices, int64_t channels, int num_threads, float* out_alpha,
                          float* out_attr) noexcept;

// The text "<prefix> %.{precision}f %.{precision}f ...\n" for each of the `rows` rows of values
// (row-major, `cols` per row), formatted exactly like C's printf / Python's % operator.
// Values must be finite (the caller checks). Throws std::bad_alloc when out of memory.
std::string format_rows(const double* values, int64_t rows, int64_t cols, int precision,
                        const std::string& prefix);

}  // namespace texel
}  // namespace faceanon
