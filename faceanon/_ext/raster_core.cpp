// faceanon's triangle rasterizer (see raster_core.hpp for the contract).
//
// Precision: fixed point, not floating point.  Each vertex x/y is snapped once to a 1/256 px grid
// (round half to even) and the edge functions are evaluated with exact integer arithmetic on the
// snapped coordinates.  This makes every coverage decision exact, so
//   * the top-left fill rule is watertight by construction: a shared edge evaluates to exactly
//     opposite values in its two triangles, and exactly one of them owns a centre lying on it;
//   * incremental evaluation along a row equals direct evaluation (no drift);
//   * the result is bit-for-bit reproducible by the numpy reference (faceanon/_ext/reference.py),
//     which the tests compare against triangle id for triangle id.
// Double precision edge functions would not give the first property without extra care (the
// same edge evaluated from its two triangles rounds differently), and the 1/512 px snapping error
// is invisible at image resolution (GPUs use the same 8 sub-pixel bits).
//
// Range: with |snapped x|, |snapped y| <= 2^29 (2^21 px) and pixel centres < 2^20 px, every edge
// function fits in 61 bits, so the common case runs on int64.  Triangles with a vertex farther
// out (up to kMaxAbsCoord = 2^40 px, a triangle partly inside the image with a far-away vertex)
// take a __int128 path with the same arithmetic; beyond that a vertex counts as non-finite.
//
// Barycentrics: w_k = double(E_k) * (1 / double(area)), depth = float(w0*z0 + w1*z1 + w2*z2) in
// double, evaluated left to right.  Floating-point contraction into FMA is disabled below so the
// numpy reference reproduces these values exactly (it matters only for exact depth ties).
//
// Threads: rows are dealt to threads in blocks of kBlockRows rows, round robin.  Each thread
// walks all triangles in index order and writes only its own rows, so a pixel's winner never
// depends on the thread count: "nearest wins, ties to the lower index" is a strict `>` test in
// index order.

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "raster_core.hpp"
#include "threads.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

namespace faceanon {
namespace raster {
namespace {

using detail::clamp_threads;
using detail::run_threads;

constexpr int64_t kBlockRows = 16;
// |snapped coordinate| bound of the int64 fast path (2^21 px).
constexpr int64_t kSmallCoord = int64_t(1) << 29;

#if defined(__SIZEOF_INT128__)
#define FACEANON_HAVE_INT128 1
using wide_t = __int128;
#else
#define FACEANON_HAVE_INT128 0
#endif

struct Snapped {
    int64_t x = 0, y = 0;  // position in 1/256 px
    double z = 0.0;
    bool ok = false;       // finite and within kMaxAbsCoord
    bool small = false;    // fits the int64 path
};

// floor(a / 256) and ceil(a / 256) for signed a (arithmetic shift: floor; true on every
// compiler we build with and guaranteed since C++20).
inline int64_t floor_sub(int64_t a) { return a >> kSubpixelBits; }
inline int64_t ceil_sub(int64_t a) { return -((-a) >> kSubpixelBits); }

Snapped snap(const float* v) {
    Snapped s;
    const double x = v[0], y = v[1], z = v[2];
    if (!(std::isfinite(x) && std::isfinite(y) && std::isfinite(z))) return s;
    if (!(std::fabs(x) <= kMaxAbsCoord && std::fabs(y) <= kMaxAbsCoord)) return s;
    // x * 256 is exact in double; nearbyint rounds half to even (default rounding mode), like
    // numpy.rint in the reference.
    s.x = static_cast<int64_t>(std::nearbyint(x * double(kSubpixelScale)));
    s.y = static_cast<int64_t>(std::nearbyint(y * double(kSubpixelScale)));
    s.z = z;
    s.ok = true;
    s.small = s.x >= -kSmallCoord && s.x <= kSmallCoord && s.y >= -kSmallCoord && s.y <= kSmallCoord;
    return s;
}

struct Job {
    const Snapped* verts;
    int64_t num_vertices;
    const int32_t* triangles;
    int64_t num_triangles;
    int64_t height, width;
    int cull;
    int num_threads;
    int32_t* tri_id;
    float* bary;
    float* depth;
};

inline bool owns_row(int64_t row, int thread, int num_threads) {
    return num_threads == 1 || (row / kBlockRows) % num_threads == thread;
}

// First row >= row owned by `thread`.
inline int64_t next_owned_row(int64_t row, int thread, int num_threads) {
    if (num_threads == 1) return row;
    const int64_t block = row / kBlockRows;
    const int64_t r = block % num_threads;
    if (r == thread) return row;
    const int64_t next_block = block + ((thread - r + num_threads) % num_threads);
    return next_block * kBlockRows;
}

// Edge k is the edge opposite vertex k, oriented so that E_k > 0 inside; E_k(vertex k) = |area|,
// hence E_k / |area| is the barycentric weight of vertex k.
template <typename I>
void draw_triangle(const Job& job, int thread, int32_t tri, const Snapped* const v[3],
                   int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    const I area = I(v[1]->x - v[0]->x) * I(v[2]->y - v[0]->y) -
                   I(v[2]->x - v[0]->x) * I(v[1]->y - v[0]->y);
    // Degenerate: covers nothing.  (The fill rule alone would already give that - on the line all
    // three E_k are 0 and the collinear edges cannot all be top-left - but 1/area is undefined.)
    if (area == 0) return;
    if (job.cull == kCullBack && area > 0) return;
    if (job.cull == kCullFront && area < 0) return;
    const bool negative = area < 0;
    const I abs_area = negative ? I(-area) : area;

    I dx[3], dy[3], step[3];
    int64_t ax[3], ay[3];
    int bias[3];
    for (int k = 0; k < 3; ++k) {
        int a = (k + 1) % 3, b = (k + 2) % 3;
        if (negative) std::swap(a, b);
        dx[k] = I(v[b]->x - v[a]->x);
        dy[k] = I(v[b]->y - v[a]->y);
        ax[k] = v[a]->x;
        ay[k] = v[a]->y;
        // Top-left rule (y down, edges oriented with the inside on their right-hand side when
        // drawn on screen): a "left" edge goes up (dy < 0), a "top" edge is horizontal going
        // right.  Exactly one of an edge and its reverse qualifies, hence watertightness.
        const bool top_left = dy[k] < 0 || (dy[k] == 0 && dx[k] > 0);
        bias[k] = top_left ? 0 : -1;  // inside iff E + bias >= 0
        step[k] = -dy[k] * I(kSubpixelScale);
    }
    const double inv_area = 1.0 / static_cast<double>(abs_area);
    const double z0 = v[0]->z, z1 = v[1]->z, z2 = v[2]->z;
    const int64_t W = job.width;
    const int T = job.num_threads;

    for (int64_t row = next_owned_row(i0, thread, T); row <= i1;) {
        if (!owns_row(row, thread, T)) {
            row = next_owned_row(row, thread, T);
            continue;
        }
        const int64_t py = row * kSubpixelScale;
        const int64_t px0 = j0 * kSubpixelScale;
        I e0 = dx[0] * I(py - ay[0]) - dy[0] * I(px0 - ax[0]) + I(bias[0]);
        I e1 = dx[1] * I(py - ay[1]) - dy[1] * I(px0 - ax[1]) + I(bias[1]);
        I e2 = dx[2] * I(py - ay[2]) - dy[2] * I(px0 - ax[2]) + I(bias[2]);
        int32_t* tid_row = job.tri_id + row * W;
        float* depth_row = job.depth + row * W;
        float* bary_row = job.bary + row * W * 3;
        for (int64_t j = j0; j <= j1; ++j) {
            if ((e0 | e1 | e2) >= 0) {
                const double w0 = static_cast<double>(e0 - I(bias[0])) * inv_area;
                const double w1 = static_cast<double>(e1 - I(bias[1])) * inv_area;
                const double w2 = static_cast<double>(e2 - I(bias[2])) * inv_area;
                const float z = static_cast<float>(w0 * z0 + w1 * z1 + w2 * z2);
                if (tid_row[j] < 0 || z > depth_row[j]) {
                    tid_row[j] = tri;
                    depth_row[j] = z;
                    bary_row[3 * j + 0] = static_cast<float>(w0);
                    bary_row[3 * j + 1] = static_cast<float>(w1);
                    bary_row[3 * j + 2] = static_cast<float>(w2);
                }
            }
            e0 += step[0];
            e1 += step[1];
            e2 += step[2];
        }
        ++row;
    }
}

void raster_worker(const Job& job, int thread) {
    const int T = job.num_threads;
    const int64_t H = job.height, W = job.width;
    // Initialise the rows this thread owns (first touch by the thread that writes them).
    for (int64_t row = next_owned_row(0, thread, T); row < H;) {
        if (!owns_row(row, thread, T)) {
            row = next_owned_row(row, thread, T);
            continue;
        }
        std::fill(job.tri_id + row * W, job.tri_id + (row + 1) * W, int32_t(-1));
        std::fill(job.depth + row * W, job.depth + (row + 1) * W,
                  -std::numeric_limits<float>::infinity());
        std::fill(job.bary + row * W * 3, job.bary + (row + 1) * W * 3, 0.0f);
        ++row;
    }

    const int64_t NV = job.num_vertices;
    for (int64_t t = 0; t < job.num_triangles; ++t) {
        const int32_t* idx = job.triangles + 3 * t;
        if (idx[0] < 0 || idx[0] >= NV || idx[1] < 0 || idx[1] >= NV || idx[2] < 0 || idx[2] >= NV)
            continue;
        const Snapped* const v[3] = {job.verts + idx[0], job.verts + idx[1], job.verts + idx[2]};
        if (!(v[0]->ok && v[1]->ok && v[2]->ok)) continue;
        // Pixel centres (j, i) with min <= 256*j <= max, clamped to the image.
        const int64_t i0 = std::max<int64_t>(0, ceil_sub(std::min({v[0]->y, v[1]->y, v[2]->y})));
        const int64_t i1 = std::min<int64_t>(H - 1, floor_sub(std::max({v[0]->y, v[1]->y, v[2]->y})));
        if (i0 > i1) continue;
        if (next_owned_row(i0, thread, T) > i1) continue;
        const int64_t j0 = std::max<int64_t>(0, ceil_sub(std::min({v[0]->x, v[1]->x, v[2]->x})));
        const int64_t j1 = std::min<int64_t>(W - 1, floor_sub(std::max({v[0]->x, v[1]->x, v[2]->x})));
        if (j0 > j1) continue;
        if (v[0]->small && v[1]->small && v[2]->small) {
            draw_triangle<int64_t>(job, thread, static_cast<int32_t>(t), v, i0, i1, j0, j1);
        } else {
#if FACEANON_HAVE_INT128
            draw_triangle<wide_t>(job, thread, static_cast<int32_t>(t), v, i0, i1, j0, j1);
#endif
            // Without a 128-bit integer type, triangles with a vertex beyond 2^21 px are skipped.
        }
    }
}

}  // namespace

int auto_num_threads(int64_t height, int64_t width, int64_t num_triangles) noexcept {
    // Below ~0.3 Mpx-equivalents a thread start (~50 us) is not worth it.
    const int64_t work = height * width + 16 * num_triangles;
    if (work < (int64_t(1) << 18)) return 1;
    const unsigned hw = std::thread::hardware_concurrency();
    int n = hw == 0 ? 1 : static_cast<int>(std::min<unsigned>(hw, 8));
    // No point in more threads than row blocks.
    const int64_t blocks = (height + kBlockRows - 1) / kBlockRows;
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n, blocks)));
}

void rasterize(const float* vertices, int64_t num_vertices, const int32_t* triangles,
               int64_t num_triangles, int64_t height, int64_t width, int cull, int num_threads,
               int32_t* tri_id, float* bary, float* depth) noexcept {
    if (height <= 0 || width <= 0) return;
    std::vector<Snapped> snapped;
    try {
        snapped.resize(static_cast<size_t>(std::max<int64_t>(num_vertices, 0)));
    } catch (...) {
        // Out of memory for the snapped copy: leave an empty result rather than crash.
        std::fill(tri_id, tri_id + height * width, int32_t(-1));
        std::fill(depth, depth + height * width, -std::numeric_limits<float>::infinity());
        std::fill(bary, bary + height * width * 3, 0.0f);
        return;
    }
    for (int64_t i = 0; i < num_vertices; ++i) snapped[i] = snap(vertices + 3 * i);

    Job job{snapped.data(), num_vertices, triangles, num_triangles, height, width, cull, 1,
            tri_id, bary, depth};
    job.num_threads = clamp_threads(num_threads, auto_num_threads(height, width, num_triangles));
    run_threads(job.num_threads, [&job](int t) { raster_worker(job, t); });
}

void interpolate(const int32_t* tri_id, const float* bary, int64_t num_pixels,
                 const int32_t* triangles, int64_t num_triangles, const double* attrs,
                 int64_t num_vertices, int64_t channels, int num_threads, float* out) noexcept {
    if (num_pixels <= 0 || channels <= 0) return;
    const int64_t work = num_pixels * (channels + 1);
    const int auto_n = work < (int64_t(1) << 19) ? 1 : auto_num_threads(num_pixels, 1, 0);
    const int n = static_cast<int>(std::min<int64_t>(clamp_threads(num_threads, auto_n), num_pixels));
    const int64_t C = channels;
    auto worker = [&](int t) {
        const int64_t begin = num_pixels * t / n, end = num_pixels * (t + 1) / n;
        for (int64_t p = begin; p < end; ++p) {
            float* o = out + p * C;
            const int32_t f = tri_id[p];
            const int32_t* idx = (f >= 0 && f < num_triangles) ? triangles + 3 * int64_t(f) : nullptr;
            if (idx == nullptr || idx[0] < 0 || idx[0] >= num_vertices || idx[1] < 0 ||
                idx[1] >= num_vertices || idx[2] < 0 || idx[2] >= num_vertices) {
                std::fill(o, o + C, 0.0f);
                continue;
            }
            const double w0 = bary[3 * p], w1 = bary[3 * p + 1], w2 = bary[3 * p + 2];
            const double* a0 = attrs + idx[0] * C;
            const double* a1 = attrs + idx[1] * C;
            const double* a2 = attrs + idx[2] * C;
            for (int64_t c = 0; c < C; ++c)
                o[c] = static_cast<float>(w0 * a0[c] + w1 * a1[c] + w2 * a2[c]);
        }
    };
    run_threads(n, worker);
}

}  // namespace raster
}  // namespace faceanon
