// NEON (AArch64 Advanced SIMD) micro-kernel, 6 x 8 doubles in 24 q-register
// accumulators, for the exact split-limb GEMM driver (gemm_driver.hpp).
// Bit-identical to gemm_wide_small_scalar (tested under qemu-aarch64 in CI).
#include <arm_neon.h>

#include "he/gemm_driver.hpp"

namespace cf {

namespace {

struct NeonKernel {
  static constexpr int MR = 6;
  static constexpr int NR = 8;
  // The narrow path's crossover as first set for every ISA (not re-measured on NEON).
  static constexpr int64_t kNarrowMaxCols = 4;
  static constexpr bool kNarrowVectors = false;  // gemm_narrow.hpp's inner loop form
  static void run(int64_t kc, const double* A, const double* B, int64_t* out) {
    float64x2_t acc[MR][NR / 2];
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < NR / 2; ++c) acc[r][c] = vdupq_n_f64(0.0);
    for (int64_t p = 0; p < kc; ++p) {
      const float64x2_t b0 = vld1q_f64(B);
      const float64x2_t b1 = vld1q_f64(B + 2);
      const float64x2_t b2 = vld1q_f64(B + 4);
      const float64x2_t b3 = vld1q_f64(B + 6);
      for (int r = 0; r < MR; ++r) {
        const float64x2_t a = vdupq_n_f64(A[r * kc]);
        acc[r][0] = vfmaq_f64(acc[r][0], a, b0);
        acc[r][1] = vfmaq_f64(acc[r][1], a, b1);
        acc[r][2] = vfmaq_f64(acc[r][2], a, b2);
        acc[r][3] = vfmaq_f64(acc[r][3], a, b3);
      }
      A += 1;
      B += NR;
    }
    // Every sum is an integer below 2^51 in magnitude: the conversion is exact.
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < NR / 2; ++c) vst1q_s64(out + r * NR + 2 * c, vcvtq_s64_f64(acc[r][c]));
  }
};

}  // namespace

void gemm_wide_small_neon(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                          int threads) {
  gemm_driver<NeonKernel>(W, S, C, threads);
}

}  // namespace cf
