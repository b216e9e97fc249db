// NEON key switch kernels for the shared driver (keyswitch_driver.hpp).
//
// AArch64 has no 64 x 64-bit vector multiply; digits are < 2^16, so each lane
// product is lo32(M)*d + (hi32(M)*d << 32) with two vmull_u32. Base-2 digits
// become all-zero/all-one masks and the product an AND.
#include <arm_neon.h>

#include "he/keyswitch_driver.hpp"

namespace cf {

namespace {

inline uint64x2_t mul_digit(uint64x2_t m, uint64x2_t d) {
  const uint32x2_t d32 = vmovn_u64(d);
  const uint64x2_t lo = vmull_u32(vmovn_u64(m), d32);
  const uint64x2_t hi = vmull_u32(vshrn_n_u64(m, 32), d32);
  return vaddq_u64(lo, vshlq_n_u64(hi, 32));
}

template <bool kMask>
struct NeonDot : DigitTerm<kMask> {
  using DigitTerm<kMask>::scalar_term;
  static uint64x2_t term(uint64x2_t m, uint64x2_t d) {
    if constexpr (kMask) {
      return vandq_u64(m, d);
    } else {
      return mul_digit(m, d);
    }
  }
  template <int R>
  static void dot(const uint64_t* const* m, const uint64_t* d, int64_t len, uint64_t* acc) {
    uint64x2_t a[R];
    for (int r = 0; r < R; ++r) a[r] = vdupq_n_u64(0);
    const int64_t end = len - len % 2;
    for (int64_t j = 0; j < end; j += 2) {
      const uint64x2_t dv = vld1q_u64(d + j);
      for (int r = 0; r < R; ++r) a[r] = vaddq_u64(a[r], term(vld1q_u64(m[r] + j), dv));
    }
    for (int r = 0; r < R; ++r) {
      uint64_t s = vgetq_lane_u64(a[r], 0) + vgetq_lane_u64(a[r], 1);
      for (int64_t j = end; j < len; ++j) s += scalar_term(m[r][j], d[j]);
      acc[r] += s;
    }
  }
  static void dot4(const uint64_t* const m[4], const uint64_t* d, int64_t len, uint64_t acc[4]) {
    dot<4>(m, d, len, acc);
  }
  static void dot2(const uint64_t* const m[2], const uint64_t* d, int64_t len, uint64_t acc[2]) {
    dot<2>(m, d, len, acc);
  }
  static void dot1(const uint64_t* m, const uint64_t* d, int64_t len, uint64_t& acc) {
    const uint64_t* rows[1] = {m};
    dot<1>(rows, d, len, &acc);
  }
  static void decompose(const uint64_t* c, int64_t n, int base_bits, uint64_t* out) {
    cf::decompose(c, n, base_bits, out);
  }
};

}  // namespace

void keyswitch_neon(const uint64_t* M, int64_t rows, int64_t n, int base_bits, int skip_low,
                    const uint64_t* c, uint64_t* out, int threads) {
  if (base_bits == 1) {
    keyswitch_driver<NeonDot<true>>(M, rows, n, base_bits, skip_low, c, out, threads);
  } else {
    keyswitch_driver<NeonDot<false>>(M, rows, n, base_bits, skip_low, c, out, threads);
  }
}

}  // namespace cf
