// Scalar reference of the bit-slice kernels: one 64 x 64 transpose per group.
#include "mpc/bitslice_driver.hpp"
#include "mpc/kernels.hpp"

namespace cf {
namespace mpc {

void transpose64(uint64_t a[64]) { transpose64_lanes<ScalarOps>(a); }

void bitslice_groups_scalar(const uint64_t* x, int64_t groups, int bits, int64_t words,
                            uint64_t* planes) {
  uint64_t a[64];
  for (int64_t g = 0; g < groups; ++g) {
    for (int i = 0; i < 64; ++i) a[i] = x[64 * g + i];
    transpose64(a);
    for (int b = 0; b < bits; ++b) planes[b * words + g] = a[b];
  }
}

void unbitslice_groups_scalar(const uint64_t* planes, int bits, int64_t words, int64_t groups,
                              uint64_t* x) {
  uint64_t a[64];
  for (int64_t g = 0; g < groups; ++g) {
    for (int b = 0; b < 64; ++b) a[b] = b < bits ? planes[b * words + g] : 0;
    transpose64(a);
    for (int i = 0; i < 64; ++i) x[64 * g + i] = a[i];
  }
}

}  // namespace mpc
}  // namespace cf
