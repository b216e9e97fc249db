// AVX-512 (F + DQ) micro-kernel, 12 x 16 doubles in 24 zmm accumulators, for
// the exact split-limb GEMM driver (gemm_driver.hpp). Chosen at run time on
// CPUs that have it (the x86-64 build also carries the AVX2 kernel).
// Bit-identical to gemm_wide_small_scalar (tested).
#include <immintrin.h>

#include "he/gemm_driver.hpp"

namespace cf {

namespace {

struct Avx512Kernel {
  static constexpr int MR = 12;
  static constexpr int NR = 16;
  // Up to 64 columns the narrow path (vpmullq, one pass over W per 8 columns) beats
  // this kernel, which pads S to 16-column panels (measured, docs/he.md).
  static constexpr int64_t kNarrowMaxCols = 64;
  static constexpr bool kNarrowVectors = true;  // gemm_narrow.hpp's inner loop form
  static void run(int64_t kc, const double* A, const double* B, int64_t* out) {
    __m512d acc[MR][2];
    for (int r = 0; r < MR; ++r) {
      acc[r][0] = _mm512_setzero_pd();
      acc[r][1] = _mm512_setzero_pd();
    }
    for (int64_t p = 0; p < kc; ++p) {
      const __m512d b0 = _mm512_loadu_pd(B);
      const __m512d b1 = _mm512_loadu_pd(B + 8);
      for (int r = 0; r < MR; ++r) {
        const __m512d a = _mm512_set1_pd(A[r * kc]);
        acc[r][0] = _mm512_fmadd_pd(a, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_pd(a, b1, acc[r][1]);
      }
      A += 1;
      B += NR;
    }
    // Every sum is an integer below 2^51 in magnitude: the conversion is exact.
    for (int r = 0; r < MR; ++r) {
      _mm512_storeu_si512(out + r * NR, _mm512_cvtpd_epi64(acc[r][0]));
      _mm512_storeu_si512(out + r * NR + 8, _mm512_cvtpd_epi64(acc[r][1]));
    }
  }
};

}  // namespace

void gemm_wide_small_avx512(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                            int threads) {
  gemm_driver<Avx512Kernel>(W, S, C, threads);
}

}  // namespace cf
