// Scalar reference key switch: out = M * decompose(c) mod 2^64.
#include <vector>

#include "he/kernels.hpp"
#include "he/parallel.hpp"

namespace cf {

void keyswitch_scalar(const uint64_t* M, int64_t rows, int64_t n, int base_bits,
                      const uint64_t* c, uint64_t* out, int threads) {
  const int64_t cols = n * digit_count(base_bits);
  std::vector<uint64_t> digits(static_cast<size_t>(cols));
  decompose(c, n, base_bits, digits.data());
  parallel_for(rows, threads, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint64_t* row = M + r * cols;
      uint64_t acc = 0;
      for (int64_t j = 0; j < cols; ++j) acc += row[j] * digits[static_cast<size_t>(j)];
      out[r] = acc;
    }
  });
}

}  // namespace cf
