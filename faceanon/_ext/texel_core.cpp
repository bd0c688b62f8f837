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

// A bilinear blend of uint8 values lies in [0, 255]: round half up (clamped for safety).
inline uint8_t to_u8(float v) {
    const float r = v + 0.5f;
    return static_cast<uint8_t>(r <= 0.0f ? 0 : (r >= 255.0f ? 255 : static_cast<int>(r)));
}

}  // namespace

void bake_sample(const int32_t* tri_id, const float* bary, int64_t num_texels,
                 const int32_t* triangles, int64_t num_triangles, const float* vertices,
                 int64_t num_vertices, const uint8_t* front, const float* zbuf, int64_t zh,
                 int64_t zw, int64_t zx0, int64_t zy0, float tol, const uint8_t* image, int64_t ih,
                 int64_t iw, const uint8_t* valid, int num_threads, uint8_t* out_rgb,
                 uint8_t* out_visible) noexcept {
    if (num_texels <= 0) return;
    const int n = static_cast<int>(
        std::min<int64_t>(clamp_threads(num_threads, streaming_threads(num_texels)), num_texels));
    auto worker = [=](int t) {
        // Local copies: the uint8 stores below may alias anything (char aliasing rules), so
        // values reached through the closure would be reloaded after every store.
        const int32_t* const tid = tri_id;
        const float* const bc = bary;
        const int32_t* const tris = triangles;
        const float* const verts = vertices;
        const int64_t nt = num_triangles, nv = num_vertices;
        const uint8_t* const fr = front;
        const float* const zb_ = zbuf;
        const int64_t zh_ = zh, zw_ = zw, zx0_ = zx0, zy0_ = zy0;
        const float tol_ = tol;
        const uint8_t* const img = image;
        const int64_t ih_ = ih, iw_ = iw;
        const uint8_t* const vld = valid;
        uint8_t* const orgb = out_rgb;
        uint8_t* const ovis = out_visible;
        const int64_t begin = num_texels * t / n, end = num_texels * (t + 1) / n;
        for (int64_t p = begin; p < end; ++p) {
            uint8_t rgb[3] = {0, 0, 0};
            uint8_t vis = 0;
            do {
            const int32_t f = tid[p];
            if (f < 0 || f >= nt) break;
            const int32_t* idx = tris + 3 * int64_t(f);
            if (idx[0] < 0 || idx[0] >= nv || idx[1] < 0 || idx[1] >= nv ||
                idx[2] < 0 || idx[2] >= nv)
                break;
            const double w0 = bc[3 * p], w1 = bc[3 * p + 1], w2 = bc[3 * p + 2];
            const float* a = verts + 3 * int64_t(idx[0]);
            const float* b = verts + 3 * int64_t(idx[1]);
            const float* c = verts + 3 * int64_t(idx[2]);
            const float x = static_cast<float>(w0 * a[0] + w1 * b[0] + w2 * c[0]);
            const float y = static_cast<float>(w0 * a[1] + w1 * b[1] + w2 * c[1]);
            const float z = static_cast<float>(w0 * a[2] + w1 * b[2] + w2 * c[2]);
            if (!std::isfinite(x) || !std::isfinite(y)) break;

            // bilinear photo sample, edges replicated
            const float cx = std::min(std::max(x, -1.0f), static_cast<float>(iw_));
            const float cy = std::min(std::max(y, -1.0f), static_cast<float>(ih_));
            const int64_t x0 = floor_i(cx), y0 = floor_i(cy);
            const float ax = cx - static_cast<float>(x0), ay = cy - static_cast<float>(y0);
            const int64_t xa = std::min(std::max<int64_t>(x0, 0), iw_ - 1);
            const int64_t xb = std::min(std::max<int64_t>(x0 + 1, 0), iw_ - 1);
            const int64_t ya = std::min(std::max<int64_t>(y0, 0), ih_ - 1);
            const int64_t yb = std::min(std::max<int64_t>(y0 + 1, 0), ih_ - 1);
            const uint8_t* p00 = img + 3 * (ya * iw_ + xa);
            const uint8_t* p01 = img + 3 * (ya * iw_ + xb);
            const uint8_t* p10 = img + 3 * (yb * iw_ + xa);
            const uint8_t* p11 = img + 3 * (yb * iw_ + xb);
            for (int ch = 0; ch < 3; ++ch) {
                const float top = p00[ch] + ax * (float(p01[ch]) - float(p00[ch]));
                const float bot = p10[ch] + ax * (float(p11[ch]) - float(p10[ch]));
                rgb[ch] = to_u8(top + ay * (bot - top));
            }

            // visibility: front-facing, in front of (or at) the photo's z-buffer, allowed
            if (!fr[f]) break;
            if (std::fabs(x) > kFar || std::fabs(y) > kFar) break;
            const int64_t px = round_even(x), py = round_even(y);
            const int64_t zx = px - zx0_, zy = py - zy0_;
            if (zx < 0 || zy < 0 || zx >= zw_ || zy >= zh_) break;
            const float zb = zb_[zy * zw_ + zx];
            if (!std::isfinite(zb) || !(z >= zb - tol_)) break;
            if (vld != nullptr) {
                const int64_t vx = std::min(std::max<int64_t>(px, 0), iw_ - 1);
                const int64_t vy = std::min(std::max<int64_t>(py, 0), ih_ - 1);
                if (!vld[vy * iw_ + vx]) break;
            }
            vis = 1;
            } while (false);
            uint8_t* o = orgb + 3 * p;  // one store per output (see the aliasing note above)
            o[0] = rgb[0];
            o[1] = rgb[1];
            o[2] = rgb[2];
            ovis[p] = vis;
        }
    };
    run_threads(n, worker);
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
