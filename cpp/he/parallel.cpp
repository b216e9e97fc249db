#include "he/parallel.hpp"

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace cf {

void parallel_for(int64_t n, int threads, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t blocks = (n + grain - 1) / grain;
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, blocks));
  if (t == 1) {
    fn(0, n);
    return;
  }
  const int64_t per = (blocks + t - 1) / t * grain;
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&](int64_t b, int64_t e) {
    try {
      fn(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(t - 1));
  for (int64_t i = 1; i < t; ++i) {
    const int64_t b = i * per;
    const int64_t e = std::min(n, b + per);
    if (b < e) workers.emplace_back(run, b, e);
  }
  run(0, std::min(n, per));
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace cf
