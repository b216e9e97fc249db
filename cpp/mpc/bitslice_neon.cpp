// NEON (AArch64) bit slicing: two 64-element groups at once, one group per
// 64-bit lane; rows are paired with vzip1q/vzip2q (a 2 x 2 word transpose),
// the six transpose stages run on q registers, and the planes of two
// consecutive groups are stored as one register. An odd last group finishes on
// the scalar reference.
#include <arm_neon.h>

#include "mpc/bitslice_driver.hpp"
#include "mpc/kernels.hpp"

namespace cf {
namespace mpc {

namespace {

struct NeonOps {
  static constexpr int V = 2;
  using T = uint64x2_t;
  template <int J>
  static T shr(T a) {
    return vshrq_n_u64(a, J);
  }
  template <int J>
  static T shl(T a) {
    return vshlq_n_u64(a, J);
  }
  static T bxor(T a, T b) { return veorq_u64(a, b); }
  static T band(T a, T b) { return vandq_u64(a, b); }
  static T splat(uint64_t v) { return vdupq_n_u64(v); }
};

}  // namespace

void bitslice_groups_neon(const uint64_t* x, int64_t groups, int bits, int64_t words,
                          uint64_t* planes) {
  uint64x2_t r[64];
  int64_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    const uint64_t* src = x + 64 * g;
    for (int i = 0; i < 64; i += 2) {
      const uint64x2_t a = vld1q_u64(src + i), b = vld1q_u64(src + 64 + i);
      r[i] = vzip1q_u64(a, b);
      r[i + 1] = vzip2q_u64(a, b);
    }
    transpose64_lanes<NeonOps>(r);
    for (int b = 0; b < bits; ++b) vst1q_u64(planes + b * words + g, r[b]);
  }
  bitslice_groups_scalar(x + 64 * g, groups - g, bits, words, planes + g);
}

void unbitslice_groups_neon(const uint64_t* planes, int bits, int64_t words, int64_t groups,
                            uint64_t* x) {
  uint64x2_t r[64];
  int64_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    for (int b = 0; b < 64; ++b)
      r[b] = b < bits ? vld1q_u64(planes + b * words + g) : vdupq_n_u64(0);
    transpose64_lanes<NeonOps>(r);
    uint64_t* dst = x + 64 * g;
    for (int i = 0; i < 64; i += 2) {
      vst1q_u64(dst + i, vzip1q_u64(r[i], r[i + 1]));
      vst1q_u64(dst + 64 + i, vzip2q_u64(r[i], r[i + 1]));
    }
  }
  unbitslice_groups_scalar(planes + g, bits, words, groups - g, x + 64 * g);
}

}  // namespace mpc
}  // namespace cf
