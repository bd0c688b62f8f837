// Tiny helpers shared by the C++ kernels: run a function on n std::threads.
#pragma once

#include <algorithm>
#include <thread>
#include <vector>

namespace faceanon {
namespace detail {

constexpr int kMaxThreads = 64;

// Run fn(0..n-1) on n threads (fn(0) on the caller); threads that fail to start run on the
// caller afterwards, so the work always completes.
template <typename Fn>
void run_threads(int n, const Fn& fn) {
    std::vector<std::thread> pool;
    std::vector<int> leftover;
    for (int t = 1; t < n; ++t) {
        try {
            pool.emplace_back(fn, t);
        } catch (...) {
            leftover.push_back(t);
        }
    }
    fn(0);
    for (int t : leftover) fn(t);
    for (auto& th : pool) th.join();
}

// `requested` threads if > 0, else `auto_value`, clamped to [1, kMaxThreads].
inline int clamp_threads(int requested, int auto_value) {
    int n = requested > 0 ? requested : auto_value;
    return std::max(1, std::min(n, kMaxThreads));
}

// Threads for a streaming kernel over `items` elements: 1 below ~0.5 M, else the hardware
// concurrency (at most 8).
inline int streaming_threads(int64_t items) {
    if (items < (int64_t(1) << 19)) return 1;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(std::min<unsigned>(hw, 8));
}

}  // namespace detail
}  // namespace faceanon
