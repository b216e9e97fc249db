// NEON micro-kernel of the limb block (limb_driver.hpp): 6 pixels x 4 vectors
// of 4 filters in 24 q-register accumulators, one FMA per tap. Exact (float32
// integers below 2^24, checked by limb_block); bit-identical to
// limb_block_scalar (tested under qemu-aarch64 in CI).
#include <arm_neon.h>

#include "he/limb_driver.hpp"

namespace cf {

namespace {

struct NeonMicro {
  static constexpr int64_t kLanes = 4;
  static constexpr int64_t kMaxNV = 4;
  static constexpr int kP = 6;

  template <int NV, int P>
  static void tile(const float* const* xp, const int64_t* toff, int64_t taps, const float* k,
                   int64_t ldk, float* acc, int64_t ldacc) {
    float32x4_t a[P][NV];
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < NV; ++v) a[p][v] = vdupq_n_f32(0.0f);
    for (int64_t t = 0; t < taps; ++t) {
      const float* kt = k + t * ldk;
      float32x4_t w[NV];
      for (int v = 0; v < NV; ++v) w[v] = vld1q_f32(kt + 4 * v);
      const int64_t off = toff[t];
      for (int p = 0; p < P; ++p) {
        const float xv = xp[p][off];
        for (int v = 0; v < NV; ++v) a[p][v] = vfmaq_n_f32(a[p][v], w[v], xv);
      }
    }
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < NV; ++v) vst1q_f32(acc + p * ldacc + 4 * v, a[p][v]);
  }
};

}  // namespace

LimbTails limb_block_neon(const LimbShape& s, const int64_t* x, const int64_t* kern,
                          const int64_t* offsets, const int64_t* bias, const LimbOut& out,
                          int threads, bool tails, LimbGate& gate) {
  return limb_block_float<NeonMicro>(s, x, kern, offsets, bias, out, threads, tails, gate);
}

}  // namespace cf
