// NEON (AArch64) replicated-sharing local steps, 2 words per q register; the
// 64-bit products from 32-bit ones (vmull_u32 for lo*lo, vmul/vmla_u32 for the
// cross terms mod 2^32, widened and shifted by vshll_n_u32). Tails run the
// scalar reference.
#include <arm_neon.h>

#include "mpc/kernels.hpp"

namespace cf {
namespace mpc {

namespace {

inline uint64x2_t mul64(uint64x2_t a, uint64x2_t b) {
  const uint32x2_t alo = vmovn_u64(a), ahi = vshrn_n_u64(a, 32);
  const uint32x2_t blo = vmovn_u64(b), bhi = vshrn_n_u64(b, 32);
  const uint32x2_t cross = vmla_u32(vmul_u32(alo, bhi), ahi, blo);
  return vaddq_u64(vmull_u32(alo, blo), vshll_n_u32(cross, 32));
}

}  // namespace

void rss_mul_neon(const uint64_t* x0, const uint64_t* x1, const uint64_t* y0, const uint64_t* y1,
                  const uint64_t* mask, uint64_t* z, int64_t count) {
  int64_t i = 0;
  for (; i + 2 <= count; i += 2) {
    const uint64x2_t b0 = vld1q_u64(y0 + i);
    const uint64x2_t v =
        vaddq_u64(vaddq_u64(mul64(vld1q_u64(x0 + i), vaddq_u64(b0, vld1q_u64(y1 + i))),
                            mul64(vld1q_u64(x1 + i), b0)),
                  vld1q_u64(mask + i));
    vst1q_u64(z + i, v);
  }
  rss_mul_scalar(x0 + i, x1 + i, y0 + i, y1 + i, mask + i, z + i, count - i);
}

void rss_and_neon(const uint64_t* x0, const uint64_t* x1, const uint64_t* y0, const uint64_t* y1,
                  const uint64_t* mask, uint64_t* z, int64_t count) {
  int64_t i = 0;
  for (; i + 2 <= count; i += 2) {
    const uint64x2_t b0 = vld1q_u64(y0 + i);
    const uint64x2_t v =
        veorq_u64(veorq_u64(vandq_u64(vld1q_u64(x0 + i), veorq_u64(b0, vld1q_u64(y1 + i))),
                            vandq_u64(vld1q_u64(x1 + i), b0)),
                  vld1q_u64(mask + i));
    vst1q_u64(z + i, v);
  }
  rss_and_scalar(x0 + i, x1 + i, y0 + i, y1 + i, mask + i, z + i, count - i);
}

}  // namespace mpc
}  // namespace cf
