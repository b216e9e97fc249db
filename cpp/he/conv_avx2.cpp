// AVX2 + FMA micro-kernels for the direct convolution driver (conv_driver.hpp),
// 12 ymm float64 accumulators each: the fused path keeps both 32-bit limbs of 4
// words for 6 output pixels and writes finished words to the output; the
// general path does 6 pixels x 8 columns of one limb. Bit-identical to
// conv_direct_scalar (tested).
#include <immintrin.h>

#include <cstdint>

#include "he/conv_driver.hpp"

namespace cf {

namespace {

constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52: exact int64 for |x| < 2^51

inline __m256i to_int64(__m256d v) {
  const __m256d magic = _mm256_set1_pd(kMagic);
  return _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(v, magic)), _mm256_castpd_si256(magic));
}

struct ConvAvx2Kernel {
  static constexpr int MR = 6;
  static constexpr int NW = 4;
  static constexpr int NR = 8;

  static void run_pair(int64_t taps, const double* A, int64_t lda, const double* B,
                       const uint64_t* bias, uint64_t* dst, int64_t ldd, int64_t rows,
                       int64_t cols) {
    __m256d lo[MR], hi[MR];
    for (int r = 0; r < MR; ++r) {
      lo[r] = _mm256_setzero_pd();
      hi[r] = _mm256_setzero_pd();
    }
    for (int64_t p = 0; p < taps; ++p) {
      const __m256d b0 = _mm256_loadu_pd(B);
      const __m256d b1 = _mm256_loadu_pd(B + 4);
      for (int r = 0; r < MR; ++r) {
        const __m256d a = _mm256_broadcast_sd(A + r * lda + p);
        lo[r] = _mm256_fmadd_pd(a, b0, lo[r]);
        hi[r] = _mm256_fmadd_pd(a, b1, hi[r]);
      }
      B += 2 * NW;
    }
    // Every sum is an integer below 2^51 in magnitude: the conversions are exact.
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias));
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(cols), lane);
    for (int r = 0; r < MR; ++r) {
      if (r >= rows) break;
      const __m256i v = _mm256_add_epi64(_mm256_add_epi64(b, to_int64(lo[r])),
                                         _mm256_slli_epi64(to_int64(hi[r]), 32));
      auto* d = reinterpret_cast<long long*>(dst + r * ldd);
      if (cols == NW) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), v);
      } else {
        _mm256_maskstore_epi64(d, mask, v);
      }
    }
  }

  static void run(int64_t kc, const double* A, int64_t lda, const double* B, int shift,
                  const uint64_t* init, uint64_t* dst, int64_t ldd) {
    __m256d acc[MR][2];
    for (int r = 0; r < MR; ++r) {
      acc[r][0] = _mm256_setzero_pd();
      acc[r][1] = _mm256_setzero_pd();
    }
    for (int64_t p = 0; p < kc; ++p) {
      const __m256d b0 = _mm256_loadu_pd(B);
      const __m256d b1 = _mm256_loadu_pd(B + 4);
      for (int r = 0; r < MR; ++r) {
        const __m256d a = _mm256_broadcast_sd(A + r * lda + p);
        acc[r][0] = _mm256_fmadd_pd(a, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_pd(a, b1, acc[r][1]);
      }
      B += NR;
    }
    const __m128i count = _mm_cvtsi32_si128(shift);
    for (int r = 0; r < MR; ++r) {
      for (int h = 0; h < 2; ++h) {
        uint64_t* d = dst + r * ldd + 4 * h;
        const __m256i v = _mm256_sll_epi64(to_int64(acc[r][h]), count);
        const __m256i base =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init ? init + 4 * h : d));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm256_add_epi64(base, v));
      }
    }
  }
};

}  // namespace

void conv_direct_avx2(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads) {
  conv_direct_simd<ConvAvx2Kernel>(s, x, kern, bias, out, threads);
}

}  // namespace cf
