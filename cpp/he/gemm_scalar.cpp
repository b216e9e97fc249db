// Scalar reference GEMM: C = W * S mod 2^64 with wrapping uint64 arithmetic.
#include "he/kernels.hpp"
#include "he/parallel.hpp"

namespace cf {

void gemm_wide_small_scalar(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                            int threads) {
  const int64_t k = W.cols;
  const int64_t n = S.cols;
  parallel_for(C.rows, threads, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      for (int64_t j = 0; j < n; ++j) C.at(i, j) = 0;
      for (int64_t p = 0; p < k; ++p) {
        const uint64_t w = W.at(i, p);
        for (int64_t j = 0; j < n; ++j) {
          C.at(i, j) += w * static_cast<uint64_t>(S.at(p, j));
        }
      }
    }
  });
}

}  // namespace cf
