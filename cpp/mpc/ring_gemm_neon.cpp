// NEON (AArch64) ring GEMM micro-kernel, 8 x 4 words. NEON has no 64-bit
// multiply: vld2q_u32 splits four packed words of B into their low and high
// 32-bit halves; vmlal(_high)_n_u32 accumulates lo(a)lo(b) exactly in 64-bit
// lanes and vmlaq_n_u32 both cross terms lo(a)hi(b) + hi(a)lo(b) mod 2^32 in
// 32-bit lanes, shifted into place once per tile (vshll_n_u32 by 32).
// Bit-identical to ring_gemm_scalar (tested under qemu-aarch64 in CI).
#include <arm_neon.h>

#include "mpc/kernels.hpp"
#include "mpc/ring_conv_driver.hpp"
#include "mpc/ring_gemm_driver.hpp"

namespace cf {
namespace mpc {

namespace {

struct NeonKernel {
  static constexpr int MR = 8;
  static constexpr int NR = 4;
  static void run(int64_t kc, const uint64_t* Ap, const uint64_t* Bp, uint64_t* C, int64_t ldc,
                  bool accumulate) {
    uint64x2_t lo[MR][2];
    uint32x4_t cross[MR];
    for (int r = 0; r < MR; ++r) {
      lo[r][0] = lo[r][1] = vdupq_n_u64(0);
      cross[r] = vdupq_n_u32(0);
    }
    for (int64_t p = 0; p < kc; ++p) {
      const uint32x4x2_t b = vld2q_u32(reinterpret_cast<const uint32_t*>(Bp));  // lo, hi halves
      for (int r = 0; r < MR; ++r) {
        const uint32_t alo = static_cast<uint32_t>(Ap[r]);
        const uint32_t ahi = static_cast<uint32_t>(Ap[r] >> 32);
        lo[r][0] = vmlal_n_u32(lo[r][0], vget_low_u32(b.val[0]), alo);
        lo[r][1] = vmlal_high_n_u32(lo[r][1], b.val[0], alo);
        cross[r] = vmlaq_n_u32(cross[r], b.val[1], alo);
        cross[r] = vmlaq_n_u32(cross[r], b.val[0], ahi);
      }
      Ap += MR;
      Bp += NR;
    }
    for (int r = 0; r < MR; ++r) {
      uint64x2_t v0 = vaddq_u64(lo[r][0], vshll_n_u32(vget_low_u32(cross[r]), 32));
      uint64x2_t v1 = vaddq_u64(lo[r][1], vshll_high_n_u32(cross[r], 32));
      uint64_t* dst = C + r * ldc;
      if (accumulate) {
        v0 = vaddq_u64(v0, vld1q_u64(dst));
        v1 = vaddq_u64(v1, vld1q_u64(dst + 2));
      }
      vst1q_u64(dst, v0);
      vst1q_u64(dst + 2, v1);
    }
  }
};

}  // namespace

void ring_gemm_neon(const uint64_t* A, const uint64_t* B, uint64_t* C, int64_t m, int64_t k,
                    int64_t n, int threads) {
  ring_gemm_driver<NeonKernel>(A, B, C, m, k, n, threads);
}

void ring_conv_neon(const ConvShape& s, const uint64_t* x, const uint64_t* kern, uint64_t* out,
                    int threads) {
  ring_conv_driver<NeonKernel>(s, x, kern, out, threads);
}

}  // namespace mpc
}  // namespace cf
