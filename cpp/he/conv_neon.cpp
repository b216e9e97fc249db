// NEON (AArch64 Advanced SIMD) micro-kernels for the direct convolution driver
// (conv_driver.hpp), 24 q-register float64 accumulators each: the fused path
// keeps both 32-bit limbs of 4 words for 6 output pixels and writes finished
// words to the output; the general path does 6 pixels x 8 columns of one limb.
// Bit-identical to conv_direct_scalar (tested under qemu-aarch64 in CI).
#include <arm_neon.h>

#include <cstdint>

#include "he/conv_driver.hpp"

namespace cf {

namespace {

struct ConvNeonKernel {
  static constexpr int MR = 6;
  static constexpr int NW = 4;
  static constexpr int NR = 8;

  static void run_pair(int64_t taps, const double* A, int64_t lda, const double* B,
                       const uint64_t* bias, uint64_t* dst, int64_t ldd, int64_t rows,
                       int64_t cols) {
    float64x2_t acc[MR][4];  // [lo words 0-1, lo 2-3, hi 0-1, hi 2-3]
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < 4; ++c) acc[r][c] = vdupq_n_f64(0.0);
    for (int64_t p = 0; p < taps; ++p) {
      const float64x2_t b0 = vld1q_f64(B);
      const float64x2_t b1 = vld1q_f64(B + 2);
      const float64x2_t b2 = vld1q_f64(B + 4);
      const float64x2_t b3 = vld1q_f64(B + 6);
      for (int r = 0; r < MR; ++r) {
        const float64x2_t a = vdupq_n_f64(A[r * lda + p]);
        acc[r][0] = vfmaq_f64(acc[r][0], a, b0);
        acc[r][1] = vfmaq_f64(acc[r][1], a, b1);
        acc[r][2] = vfmaq_f64(acc[r][2], a, b2);
        acc[r][3] = vfmaq_f64(acc[r][3], a, b3);
      }
      B += 2 * NW;
    }
    // Every sum is an integer below 2^51 in magnitude: the conversions are exact.
    for (int r = 0; r < MR; ++r) {
      if (r >= rows) break;
      uint64_t words[NW];
      for (int h = 0; h < 2; ++h) {
        const uint64x2_t lo = vreinterpretq_u64_s64(vcvtq_s64_f64(acc[r][h]));
        const uint64x2_t hi = vreinterpretq_u64_s64(vcvtq_s64_f64(acc[r][2 + h]));
        const uint64x2_t v = vaddq_u64(vaddq_u64(vld1q_u64(bias + 2 * h), lo), vshlq_n_u64(hi, 32));
        vst1q_u64(words + 2 * h, v);
      }
      for (int64_t c = 0; c < cols; ++c) dst[r * ldd + c] = words[c];
    }
  }

  static void run(int64_t kc, const double* A, int64_t lda, const double* B, int shift,
                  const uint64_t* init, uint64_t* dst, int64_t ldd) {
    float64x2_t acc[MR][NR / 2];
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < NR / 2; ++c) acc[r][c] = vdupq_n_f64(0.0);
    for (int64_t p = 0; p < kc; ++p) {
      const float64x2_t b0 = vld1q_f64(B);
      const float64x2_t b1 = vld1q_f64(B + 2);
      const float64x2_t b2 = vld1q_f64(B + 4);
      const float64x2_t b3 = vld1q_f64(B + 6);
      for (int r = 0; r < MR; ++r) {
        const float64x2_t a = vdupq_n_f64(A[r * lda + p]);
        acc[r][0] = vfmaq_f64(acc[r][0], a, b0);
        acc[r][1] = vfmaq_f64(acc[r][1], a, b1);
        acc[r][2] = vfmaq_f64(acc[r][2], a, b2);
        acc[r][3] = vfmaq_f64(acc[r][3], a, b3);
      }
      B += NR;
    }
    const int64x2_t count = vdupq_n_s64(shift);
    for (int r = 0; r < MR; ++r) {
      for (int c = 0; c < NR / 2; ++c) {
        uint64_t* d = dst + r * ldd + 2 * c;
        const uint64x2_t v = vshlq_u64(vreinterpretq_u64_s64(vcvtq_s64_f64(acc[r][c])), count);
        const uint64x2_t base = vld1q_u64(init ? init + 2 * c : d);
        vst1q_u64(d, vaddq_u64(base, v));
      }
    }
  }
};

}  // namespace

void conv_direct_neon(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads) {
  conv_direct_simd<ConvNeonKernel>(s, x, kern, bias, out, threads);
}

}  // namespace cf
