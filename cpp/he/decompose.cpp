#include <string>

#include "he/kernels.hpp"

namespace cf {

int digit_count(int base_bits) {
  if (base_bits < 1 || base_bits > 16) {
    throw KernelArgumentError("base_bits must be in [1, 16], got " + std::to_string(base_bits));
  }
  return (64 + base_bits - 1) / base_bits;
}

void decompose(const uint64_t* c, int64_t n, int base_bits, uint64_t* out) {
  const int l = digit_count(base_bits);
  const uint64_t mask = (uint64_t{1} << base_bits) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t v = c[i];
    uint64_t* d = out + i * l;
    for (int j = 0; j < l; ++j) {
      const int shift = base_bits * (l - 1 - j);
      d[j] = (v >> shift) & mask;
    }
  }
}

}  // namespace cf
