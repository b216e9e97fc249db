// AVX-512 micro-kernel of the limb block (limb_driver.hpp): 6 pixels x 4
// vectors of 16 filters in 24 zmm accumulators, one broadcast FMA per tap.
// Exact (float32 integers below 2^24, checked by limb_block); bit-identical to
// limb_block_scalar (tested).
#include <immintrin.h>

#include "he/limb_driver.hpp"

namespace cf {

namespace {

struct Avx512Micro {
  static constexpr int64_t kLanes = 16;
  static constexpr int64_t kMaxNV = 4;
  static constexpr int kP = 6;

  template <int NV, int P>
  static void tile(const float* const* xp, const int64_t* toff, int64_t taps, const float* k,
                   int64_t ldk, float* acc, int64_t ldacc) {
    __m512 a[P][NV];
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < NV; ++v) a[p][v] = _mm512_setzero_ps();
    for (int64_t t = 0; t < taps; ++t) {
      const float* kt = k + t * ldk;
      __m512 w[NV];
      for (int v = 0; v < NV; ++v) w[v] = _mm512_loadu_ps(kt + 16 * v);
      const int64_t off = toff[t];
      for (int p = 0; p < P; ++p) {
        const __m512 xb = _mm512_set1_ps(xp[p][off]);
        for (int v = 0; v < NV; ++v) a[p][v] = _mm512_fmadd_ps(xb, w[v], a[p][v]);
      }
    }
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < NV; ++v) _mm512_storeu_ps(acc + p * ldacc + 16 * v, a[p][v]);
  }
};

}  // namespace

LimbTails limb_block_avx512(const LimbShape& s, const int64_t* x, const int64_t* kern,
                            const int64_t* offsets, const int64_t* bias, const LimbOut& out,
                            int threads, bool tails, LimbGate& gate) {
  return limb_block_float<Avx512Micro>(s, x, kern, offsets, bias, out, threads, tails, gate);
}

}  // namespace cf
