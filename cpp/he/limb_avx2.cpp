// AVX2 micro-kernel of the limb block (limb_driver.hpp): 4 pixels x 3
// vectors of 8 filters in 12 ymm accumulators, one broadcast FMA per tap.
// Exact (float32 integers below 2^24, checked by limb_block); bit-identical to
// limb_block_scalar (tested).
#include <immintrin.h>

#include "he/limb_driver.hpp"

namespace cf {

namespace {

struct Avx2Micro {
  static constexpr int64_t kLanes = 8;
  static constexpr int64_t kMaxNV = 3;
  static constexpr int kP = 4;

  template <int NV, int P>
  static void tile(const float* const* xp, const int64_t* toff, int64_t taps, const float* k,
                   int64_t ldk, float* acc, int64_t ldacc) {
    __m256 a[P][NV];
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < NV; ++v) a[p][v] = _mm256_setzero_ps();
    for (int64_t t = 0; t < taps; ++t) {
      const float* kt = k + t * ldk;
      __m256 w[NV];
      for (int v = 0; v < NV; ++v) w[v] = _mm256_loadu_ps(kt + 8 * v);
      const int64_t off = toff[t];
      for (int p = 0; p < P; ++p) {
        const __m256 xb = _mm256_set1_ps(xp[p][off]);
        for (int v = 0; v < NV; ++v) a[p][v] = _mm256_fmadd_ps(xb, w[v], a[p][v]);
      }
    }
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < NV; ++v) _mm256_storeu_ps(acc + p * ldacc + 8 * v, a[p][v]);
  }
};

}  // namespace

LimbTails limb_block_avx2(const LimbShape& s, const int64_t* x, const int64_t* kern,
                          const int64_t* offsets, const int64_t* bias, const LimbOut& out,
                          int threads, bool tails, LimbGate& gate) {
  return limb_block_float<Avx2Micro>(s, x, kern, offsets, bias, out, threads, tails, gate);
}

}  // namespace cf
