// Minimal fork-join helper: split [0, n) into contiguous chunks over threads.
#pragma once

#include <cstdint>
#include <functional>

namespace cf {

/// Calls fn(begin, end) on `threads` contiguous chunks of [0, n) aligned to
/// `grain`; the calling thread runs the first chunk. Exceptions thrown by any
/// chunk are rethrown in the caller after all chunks finish.
void parallel_for(int64_t n, int threads, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace cf
