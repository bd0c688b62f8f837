// Kernels over a raster's texels/pixels (see texel_core.hpp for the contracts).
//
// They replace chains of whole-image numpy/OpenCV passes (interpolate -> remap -> compare ->
// lookup -> remap for a bake; interpolate -> two area resizes -> divide for the render), each of
// which streamed the full (T, T, 3) float arrays through memory: one pass per texel instead.

#include "texel_core.hpp"

#include "threads.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

namespace faceanon {
namespace texel {
namespace {

using detail::clamp_threads;
using detail::run_threads;
using detail::streaming_threads;

// floor() of a float with |v| < 2^62, without a libm call (no SSE4.1 rounding instructions in a
// portable build; std::floor / std::nearbyint per texel cost more than the rest of the pass).
inline int64_t floor_i(float v) {
    const int64_t i = static_cast<int64_t>(v);  // truncates toward zero
    return i - (v < static_cast<float>(i) ? 1 : 0);
}

// Nearest integer, halves to even (as OpenCV's cvRound, which cv2.remap's nearest mode uses).
inline int64_t round_even(float v) {
    int64_t f = floor_i(v);
    const float d = v - static_cast<float>(f);
    if (d > 0.5f || (d == 0.5f && (f & 1))) ++f;
    return f;
}

// Coordinates beyond this many px are treated as "far outside" without converting to an integer.
constexpr float kFar = 1.0e9f;

// Bilinear sample of an RGB uint8 image at (x, y) (pixel centres at integers), edges replicated.
// Fixed point: the fractional offsets are quantised to 1/256 px (OpenCV's remap uses 1/32) and the
// blend runs on integers, rounded to nearest - the float version costs ~3x the instructions.
inline void sample_bilinear(const uint8_t* img, int64_t ih, int64_t iw, float x, float y, uint8_t* rgb) {
    const float cx = std::min(std::max(x, -1.0f), static_cast<float>(iw));
    const float cy = std::min(std::max(y, -1.0f), static_cast<float>(ih));
    const int64_t x0 = floor_i(cx), y0 = floor_i(cy);
    const int32_t wx = static_cast<int32_t>((cx - static_cast<float>(x0)) * 256.0f + 0.5f);  // 0..256
    const int32_t wy = static_cast<int32_t>((cy - static_cast<float>(y0)) * 256.0f + 0.5f);
    const int64_t xa = std::min(std::max<int64_t>(x0, 0), iw - 1);
    const int64_t xb = std::min(std::max<int64_t>(x0 + 1, 0), iw - 1);
    const int64_t ya = std::min(std::max<int64_t>(y0, 0), ih - 1);
    const int64_t yb = std::min(std::max<int64_t>(y0 + 1, 0), ih - 1);
    const uint8_t* p00 = img + 3 * (ya * iw + xa);
    const uint8_t* p01 = img + 3 * (ya * iw + xb);
    const uint8_t* p10 = img + 3 * (yb * iw + xa);
    const uint8_t* p11 = img + 3 * (yb * iw + xb);
    for (int ch = 0; ch < 3; ++ch) {
        const int32_t top = int32_t(p00[ch]) * (256 - wx) + int32_t(p01[ch]) * wx;  // <= 255 * 256
        const int32_t bot = int32_t(p10[ch]) * (256 - wx) + int32_t(p11[ch]) * wx;
        rgb[ch] = static_cast<uint8_t>((top * (256 - wy) + bot * wy + (1 << 15)) >> 16);
    }
}

// 1 if a texel at photo position (x, y, z) of a triangle with facing flag `front` is seen in the
// photo: front-facing, its nearest pixel inside the z-buffer window with a finite depth zb and
// z >= zb - tol, and allowed by `valid` (when given; looked up with the pixel clamped to the image).
inline uint8_t visible_at(uint8_t front, float x, float y, float z, const float* zbuf, int64_t zh,
                          int64_t zw, int64_t zx0, int64_t zy0, float tol, const uint8_t* valid,
                          int64_t ih, int64_t iw) {
    if (!front) return 0;
    if (std::fabs(x) > kFar || std::fabs(y) > kFar) return 0;
    const int64_t px = round_even(x), py = round_even(y);
    const int64_t zx = px - zx0, zy = py - zy0;
    if (zx < 0 || zy < 0 || zx >= zw || zy >= zh) return 0;
    const float zb = zbuf[zy * zw + zx];
    if (!std::isfinite(zb) || !(z >= zb - tol)) return 0;
    if (valid != nullptr) {
        const int64_t vx = std::min(std::max<int64_t>(px, 0), iw - 1);
        const int64_t vy = std::min(std::max<int64_t>(py, 0), ih - 1);
        if (!valid[vy * iw + vx]) return 0;
    }
    return 1;
}

// Per triangle of the UV layout: the affine map texel (col, row) -> photo (x, y, z), written
// relative to the triangle's first UV vertex: f = f0 + a * (col - u0) + b * (row - v0). Equal to
// the barycentric blend of the vertex positions (it is linear on the triangle), but one texel
// costs 3 multiply-adds per coordinate instead of reading and applying 3 barycentric weights.
struct Affine {
    float u0, v0;
    float f0[3], a[3], b[3];
    bool ok;  // vertex indices in range, finite positions, non-degenerate UV triangle
};

void affine_maps(const float* uvpx, const int32_t* triangles, int64_t num_triangles,
                 const float* vertices, int64_t num_vertices, int num_threads, Affine* out) {
    const int n = static_cast<int>(std::max<int64_t>(
        1, std::min<int64_t>(clamp_threads(num_threads, streaming_threads(16 * num_triangles)),
                             num_triangles)));
    run_threads(n, [=](int t) {
        const int64_t begin = num_triangles * t / n, end = num_triangles * (t + 1) / n;
        for (int64_t f = begin; f < end; ++f) {
            Affine& m = out[f];
            m.ok = false;
            const int32_t* idx = triangles + 3 * f;
            if (idx[0] < 0 || idx[0] >= num_vertices || idx[1] < 0 || idx[1] >= num_vertices ||
                idx[2] < 0 || idx[2] >= num_vertices)
                continue;
            const double u0 = uvpx[2 * idx[0]], v0 = uvpx[2 * idx[0] + 1];
            const double du1 = uvpx[2 * idx[1]] - u0, dv1 = uvpx[2 * idx[1] + 1] - v0;
            const double du2 = uvpx[2 * idx[2]] - u0, dv2 = uvpx[2 * idx[2] + 1] - v0;
            const double det = du1 * dv2 - du2 * dv1;
            if (!(std::fabs(det) > 0.0) || !std::isfinite(det)) continue;
            bool finite = true;
            for (int c = 0; c < 3; ++c) {
                const double g0 = vertices[3 * int64_t(idx[0]) + c];
                const double g1 = vertices[3 * int64_t(idx[1]) + c] - g0;
                const double g2 = vertices[3 * int64_t(idx[2]) + c] - g0;
                m.f0[c] = static_cast<float>(g0);
                m.a[c] = static_cast<float>((g1 * dv2 - g2 * dv1) / det);
                m.b[c] = static_cast<float>((du1 * g2 - du2 * g1) / det);
                finite = finite && std::isfinite(m.f0[c]) && std::isfinite(m.a[c]) && std::isfinite(m.b[c]);
            }
            m.u0 = static_cast<float>(u0);
            m.v0 = static_cast<float>(v0);
            m.ok = finite;
        }
    });
}

}  // namespace

void bake_sample(const int32_t* tri_id, int64_t rows, int64_t cols, const float* uvpx,
                 const int32_t* triangles, int64_t num_triangles, const float* vertices,
                 int64_t num_vertices, const uint8_t* front, const float* zbuf, int64_t zh,
                 int64_t zw, int64_t zx0, int64_t zy0, float tol, const uint8_t* image, int64_t ih,
                 int64_t iw, const uint8_t* valid, int num_threads, uint8_t* out_rgb,
                 uint8_t* out_visible) {
    if (rows <= 0 || cols <= 0) return;
    std::vector<Affine> maps(static_cast<size_t>(std::max<int64_t>(num_triangles, 0)));
    if (num_triangles > 0)
        affine_maps(uvpx, triangles, num_triangles, vertices, num_vertices, num_threads, maps.data());
    const Affine* const aff = maps.data();
    const int n = static_cast<int>(
        std::min<int64_t>(clamp_threads(num_threads, streaming_threads(rows * cols)), rows));
    run_threads(n, [=](int t) {
        // Everything the loop reads is copied to locals: the uint8 stores below may alias any
        // memory (char aliasing), so values reached through the closure would be reloaded.
        const int32_t* const tid = tri_id;
        const int64_t nt = num_triangles;
        const uint8_t* const fr = front;
        const float* const zbp = zbuf;
        const int64_t zh_ = zh, zw_ = zw, zx0_ = zx0, zy0_ = zy0;
        const float tol_ = tol;
        const uint8_t* const img = image;
        const int64_t ih_ = ih, iw_ = iw;
        const uint8_t* const vld = valid;
        uint8_t* const orgb = out_rgb;
        uint8_t* const ovis = out_visible;
        const int64_t r0 = rows * t / n, r1 = rows * (t + 1) / n;
        for (int64_t row = r0; row < r1; ++row) {
            for (int64_t col = 0; col < cols; ++col) {
                const int64_t p = row * cols + col;
                uint8_t rgb[3] = {0, 0, 0};
                uint8_t vis = 0;
                const int32_t f = tid[p];
                if (f >= 0 && f < nt && aff[f].ok) {
                    const Affine& m = aff[f];
                    const float dc = static_cast<float>(col) - m.u0, dr = static_cast<float>(row) - m.v0;
                    const float x = m.f0[0] + m.a[0] * dc + m.b[0] * dr;
                    const float y = m.f0[1] + m.a[1] * dc + m.b[1] * dr;
                    const float z = m.f0[2] + m.a[2] * dc + m.b[2] * dr;
                    if (std::isfinite(x) && std::isfinite(y)) {
                        sample_bilinear(img, ih_, iw_, x, y, rgb);
                        vis = visible_at(fr[f], x, y, z, zbp, zh_, zw_, zx0_, zy0_, tol_, vld, ih_, iw_);
                    }
                }
                uint8_t* o = orgb + 3 * p;
                o[0] = rgb[0];
                o[1] = rgb[1];
                o[2] = rgb[2];
                ovis[p] = vis;
            }
        }
    });
}

void resolve_supersampled(const int32_t* tri_id, const float* bary, int64_t h, int64_t w, int64_t k,
                          const int32_t* triangles, int64_t num_triangles, const double* attrs,
                          int64_t num_vertices, int64_t channels, int num_threads, float* out_alpha,
                          float* out_attr) noexcept {
    if (h <= 0 || w <= 0 || k <= 0 || channels <= 0) return;
    const int64_t big_w = w * k;
    const int n = static_cast<int>(
        std::min<int64_t>(clamp_threads(num_threads, streaming_threads(h * w * k * k)), h));
    const double inv_samples = 1.0 / double(k * k);
    auto worker = [&](int t) {
        std::vector<double> acc(static_cast<size_t>(channels));
        const int64_t r0 = h * t / n, r1 = h * (t + 1) / n;
        for (int64_t i = r0; i < r1; ++i) {
            for (int64_t j = 0; j < w; ++j) {
                std::fill(acc.begin(), acc.end(), 0.0);
                int64_t covered = 0;
                for (int64_t si = 0; si < k; ++si) {
                    const int64_t row = (i * k + si) * big_w + j * k;
                    for (int64_t sj = 0; sj < k; ++sj) {
                        const int64_t s = row + sj;
                        const int32_t f = tri_id[s];
                        if (f < 0 || f >= num_triangles) continue;
                        const int32_t* idx = triangles + 3 * int64_t(f);
                        if (idx[0] < 0 || idx[0] >= num_vertices || idx[1] < 0 ||
                            idx[1] >= num_vertices || idx[2] < 0 || idx[2] >= num_vertices)
                            continue;
                        const double w0 = bary[3 * s], w1 = bary[3 * s + 1], w2 = bary[3 * s + 2];
                        const double* a0 = attrs + idx[0] * channels;
                        const double* a1 = attrs + idx[1] * channels;
                        const double* a2 = attrs + idx[2] * channels;
                        for (int64_t c = 0; c < channels; ++c) acc[c] += w0 * a0[c] + w1 * a1[c] + w2 * a2[c];
                        ++covered;
                    }
                }
                const int64_t p = i * w + j;
                out_alpha[p] = static_cast<float>(double(covered) * inv_samples);
                float* o = out_attr + p * channels;
                if (covered == 0) {
                    std::fill(o, o + channels, 0.0f);
                } else {
                    const double inv = 1.0 / double(covered);
                    for (int64_t c = 0; c < channels; ++c) o[c] = static_cast<float>(acc[c] * inv);
                }
            }
        }
    };
    run_threads(n, worker);
}

std::string format_rows(const double* values, int64_t rows, int64_t cols, int precision,
                        const std::string& prefix) {
    std::string out;
    if (rows <= 0) return out;
    // a finite double in fixed notation: sign + up to 309 integer digits + '.' + precision digits
    const size_t worst = prefix.size() + size_t(cols) * (size_t(precision) + 330) + 2;
    out.reserve(size_t(rows) * (prefix.size() + size_t(cols) * (size_t(precision) + 8) + 2));
    std::vector<char> line(worst);
    for (int64_t r = 0; r < rows; ++r) {
        char* pos = line.data();
        char* const last = line.data() + line.size();
        std::memcpy(pos, prefix.data(), prefix.size());
        pos += prefix.size();
        for (int64_t c = 0; c < cols; ++c) {
            *pos++ = ' ';
            const auto res = std::to_chars(pos, last, values[r * cols + c], std::chars_format::fixed, precision);
            pos = res.ptr;
        }
        *pos++ = '\n';
        out.append(line.data(), size_t(pos - line.data()));
    }
    return out;
}

}  // namespace texel
}  // namespace faceanon
