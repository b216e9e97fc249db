// AVX-512 (F + DQ) micro-kernels for the direct convolution driver
// (conv_driver.hpp), 24 zmm float64 accumulators each: the fused path keeps
// both 32-bit limbs of 8 words for 12 output pixels and writes finished words
// to the output; the general path does 12 pixels x 16 columns of one limb.
// Bit-identical to conv_direct_scalar (tested).
// GCC 12's AVX-512 intrinsics pass an "undefined" vector as the unused mask
// operand, which -W(maybe-)uninitialized reports from inside the header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstdint>

#include "he/conv_driver.hpp"

namespace cf {

namespace {

struct ConvAvx512Kernel {
  static constexpr int MR = 12;
  static constexpr int NW = 8;
  static constexpr int NR = 16;

  static void run_pair(int64_t taps, const double* A, int64_t lda, const double* B,
                       const uint64_t* bias, uint64_t* dst, int64_t ldd, int64_t rows,
                       int64_t cols) {
    __m512d lo[MR], hi[MR];
    for (int r = 0; r < MR; ++r) {
      lo[r] = _mm512_setzero_pd();
      hi[r] = _mm512_setzero_pd();
    }
    for (int64_t p = 0; p < taps; ++p) {
      const __m512d b0 = _mm512_loadu_pd(B);
      const __m512d b1 = _mm512_loadu_pd(B + 8);
      for (int r = 0; r < MR; ++r) {
        const __m512d a = _mm512_set1_pd(A[r * lda + p]);
        lo[r] = _mm512_fmadd_pd(a, b0, lo[r]);
        hi[r] = _mm512_fmadd_pd(a, b1, hi[r]);
      }
      B += 2 * NW;
    }
    // Every sum is an integer below 2^51 in magnitude: the conversions are exact.
    const __m512i b = _mm512_loadu_si512(bias);
    const __mmask8 mask = static_cast<__mmask8>((1u << cols) - 1);
    for (int r = 0; r < MR; ++r) {
      if (r >= rows) break;
      const __m512i v = _mm512_add_epi64(_mm512_add_epi64(b, _mm512_cvtpd_epi64(lo[r])),
                                         _mm512_slli_epi64(_mm512_cvtpd_epi64(hi[r]), 32));
      if (cols == NW) {
        _mm512_storeu_si512(dst + r * ldd, v);
      } else {
        _mm512_mask_storeu_epi64(dst + r * ldd, mask, v);
      }
    }
  }

  static void run(int64_t kc, const double* A, int64_t lda, const double* B, int shift,
                  const uint64_t* init, uint64_t* dst, int64_t ldd) {
    __m512d acc[MR][2];
    for (int r = 0; r < MR; ++r) {
      acc[r][0] = _mm512_setzero_pd();
      acc[r][1] = _mm512_setzero_pd();
    }
    for (int64_t p = 0; p < kc; ++p) {
      const __m512d b0 = _mm512_loadu_pd(B);
      const __m512d b1 = _mm512_loadu_pd(B + 8);
      for (int r = 0; r < MR; ++r) {
        const __m512d a = _mm512_set1_pd(A[r * lda + p]);
        acc[r][0] = _mm512_fmadd_pd(a, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_pd(a, b1, acc[r][1]);
      }
      B += NR;
    }
    const __m128i count = _mm_cvtsi32_si128(shift);
    for (int r = 0; r < MR; ++r) {
      for (int h = 0; h < 2; ++h) {
        uint64_t* d = dst + r * ldd + 8 * h;
        const __m512i v = _mm512_sll_epi64(_mm512_cvtpd_epi64(acc[r][h]), count);
        const __m512i base = _mm512_loadu_si512(init ? init + 8 * h : d);
        _mm512_storeu_si512(d, _mm512_add_epi64(base, v));
      }
    }
  }
};

}  // namespace

void conv_direct_avx512_fma(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                            const uint64_t* bias, uint64_t* out, int threads) {
  conv_direct_simd<ConvAvx512Kernel>(s, x, kern, bias, out, threads);
}

void conv_direct_avx512(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, uint64_t* out, int threads) {
  static const bool vnni = avx512_vnni_available();
  if (vnni && conv_max_abs(s, x) < (uint64_t{1} << 15)) {
    conv_direct_avx512_vnni(s, x, kern, bias, out, threads);
  } else {
    conv_direct_avx512_fma(s, x, kern, bias, out, threads);
  }
}

}  // namespace cf
