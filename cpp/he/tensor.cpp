// Paper Eq. 44: the rounded tensor product of two ciphertexts.
#include <string>

#include "he/kernels.hpp"
#include "he/parallel.hpp"

namespace cf {

void tensor_round(const uint64_t* a, int64_t n1, const uint64_t* b, int64_t n2, int shift,
                  uint64_t* out, int threads) {
  if (shift < 1 || shift > 63) {
    throw KernelArgumentError("tensor_round: shift must be in [1, 63], got " +
                              std::to_string(shift));
  }
  const i128 half = static_cast<i128>(1) << (shift - 1);
  parallel_for(n2, threads, 16, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const i128 bj = static_cast<int64_t>(b[j]);
      uint64_t* col = out + j * n1;
      for (int64_t i = 0; i < n1; ++i) {
        const i128 prod = static_cast<i128>(static_cast<int64_t>(a[i])) * bj;
        // Arithmetic shift of a signed 128-bit value is floor division.
        col[i] = static_cast<uint64_t>((prod + half) >> shift);
      }
    }
  });
}

}  // namespace cf
