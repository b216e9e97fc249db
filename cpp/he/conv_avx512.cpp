// AVX-512 (F + DQ) micro-kernel for the direct convolution driver
// (conv_driver.hpp): 12 output pixels x 16 limb columns in 24 zmm float64
// accumulators; finished words go to the output with streaming stores (the
// output is written once and not read back here, so it need not pass through
// the caches). Bit-identical to conv_direct_scalar (tested).
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
  static constexpr int NR = 16;
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
    // Every sum is an integer below 2^51 in magnitude: the conversion is exact.
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
  static void store(uint64_t* dst, const uint64_t* src, int64_t count) {
    int64_t i = 0;
    while (i < count && (reinterpret_cast<uintptr_t>(dst + i) & 63) != 0) {
      dst[i] = src[i];
      ++i;
    }
    for (; i + 8 <= count; i += 8) {
      _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i), _mm512_loadu_si512(src + i));
    }
    for (; i < count; ++i) dst[i] = src[i];
  }
  static void finish() { _mm_sfence(); }  // streaming stores are visible before the join
};

}  // namespace

void conv_direct_avx512(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, uint64_t* out, int threads) {
  conv_direct_simd<ConvAvx512Kernel>(s, x, kern, bias, out, threads);
}

}  // namespace cf
