// AVX2 + FMA micro-kernel (6 x 8 doubles in 12 ymm accumulators) for the
// exact split-limb GEMM driver (gemm_driver.hpp). Bit-identical to
// gemm_wide_small_scalar (tested).
#include <immintrin.h>

#include "he/gemm_driver.hpp"

namespace cf {

namespace {

constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52: exact int64 for |x| < 2^51

struct Avx2Kernel {
  static constexpr int MR = 6;
  static constexpr int NR = 8;
  // Up to 12 columns the narrow path (one pass over W per 8 columns) beats this
  // kernel (measured, docs/he.md).
  static constexpr int64_t kNarrowMaxCols = 12;
  static constexpr bool kNarrowVectors = false;  // gemm_narrow.hpp's inner loop form
  // out[r*NR + c] = sum_p A[r*kc + p] * B[p*NR + c], written as exact int64.
  static void run(int64_t kc, const double* A, const double* B, int64_t* out) {
    __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
    __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
    __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
    __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
    __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
    __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
    for (int64_t p = 0; p < kc; ++p) {
      const __m256d b0 = _mm256_loadu_pd(B);
      const __m256d b1 = _mm256_loadu_pd(B + 4);
      __m256d a = _mm256_broadcast_sd(A + 0 * kc);
      c00 = _mm256_fmadd_pd(a, b0, c00);
      c01 = _mm256_fmadd_pd(a, b1, c01);
      a = _mm256_broadcast_sd(A + 1 * kc);
      c10 = _mm256_fmadd_pd(a, b0, c10);
      c11 = _mm256_fmadd_pd(a, b1, c11);
      a = _mm256_broadcast_sd(A + 2 * kc);
      c20 = _mm256_fmadd_pd(a, b0, c20);
      c21 = _mm256_fmadd_pd(a, b1, c21);
      a = _mm256_broadcast_sd(A + 3 * kc);
      c30 = _mm256_fmadd_pd(a, b0, c30);
      c31 = _mm256_fmadd_pd(a, b1, c31);
      a = _mm256_broadcast_sd(A + 4 * kc);
      c40 = _mm256_fmadd_pd(a, b0, c40);
      c41 = _mm256_fmadd_pd(a, b1, c41);
      a = _mm256_broadcast_sd(A + 5 * kc);
      c50 = _mm256_fmadd_pd(a, b0, c50);
      c51 = _mm256_fmadd_pd(a, b1, c51);
      A += 1;
      B += NR;
    }
    const __m256d magic = _mm256_set1_pd(kMagic);
    const __m256i magic_bits = _mm256_castpd_si256(magic);
    auto store = [&](int64_t* dst, __m256d v) {
      const __m256i bits = _mm256_castpd_si256(_mm256_add_pd(v, magic));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_sub_epi64(bits, magic_bits));
    };
    store(out + 0 * NR, c00);
    store(out + 0 * NR + 4, c01);
    store(out + 1 * NR, c10);
    store(out + 1 * NR + 4, c11);
    store(out + 2 * NR, c20);
    store(out + 2 * NR + 4, c21);
    store(out + 3 * NR, c30);
    store(out + 3 * NR + 4, c31);
    store(out + 4 * NR, c40);
    store(out + 4 * NR + 4, c41);
    store(out + 5 * NR, c50);
    store(out + 5 * NR + 4, c51);
  }
};

}  // namespace

void gemm_wide_small_avx2(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                          int threads) {
  gemm_driver<Avx2Kernel>(W, S, C, threads);
}

}  // namespace cf
