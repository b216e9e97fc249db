// NEON seeded convolution: kernel words split into signed 32-bit halves
// (seeded.hpp), multiplied by x with widening multiply-accumulate (SMLAL),
// low and high sums combined once per output. Bit-identical to
// seeded_conv_scalar (tested under qemu-aarch64 in CI).
#include <arm_neon.h>

#include <algorithm>
#include <vector>

#include "he/parallel.hpp"
#include "he/seeded.hpp"

namespace cf {

namespace {

constexpr int64_t kChunk = 16;  // filters per pass: 8 low + 8 high int64x2 accumulators

}  // namespace

void seeded_conv_neon(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads) {
  const int64_t taps = s.kh * s.kw * s.c;
  std::vector<int32_t> lo(static_cast<size_t>(taps * s.f));
  std::vector<int32_t> hi(lo.size());
  for (size_t i = 0; i < lo.size(); ++i) {
    lo[i] = static_cast<int32_t>(split_lo(kern[i]));
    hi[i] = static_cast<int32_t>(split_hi(kern[i]));
  }
  const int64_t vec_f = s.f / 4 * 4;
  parallel_for(s.n * s.out_h, threads, 1, [&](int64_t r0, int64_t r1) {
    for_each_output(
        s, r0, r1,
        [&](int64_t pix, int64_t ky0, int64_t ky1, int64_t kx0, int64_t kx1, int64_t in_base) {
          uint64_t* acc_out = out + pix * s.f;
          for (int64_t f0 = 0; f0 < vec_f; f0 += kChunk) {
            const int64_t nq = std::min<int64_t>(kChunk, vec_f - f0) / 4;  // int32x4 per plane
            int64x2_t al[8], ah[8];
            for (int v = 0; v < 8; ++v) {
              al[v] = vdupq_n_s64(0);
              ah[v] = vdupq_n_s64(0);
            }
            for (int64_t ky = ky0; ky < ky1; ++ky) {
              for (int64_t kx = kx0; kx < kx1; ++kx) {
                const int64_t* xp = x + in_base + (ky * s.w + kx) * s.c;
                const int64_t toff = (ky * s.kw + kx) * s.c * s.f + f0;
                for (int64_t ch = 0; ch < s.c; ++ch) {
                  const int32x2_t xv = vdup_n_s32(static_cast<int32_t>(xp[ch]));
                  const int32_t* lp = lo.data() + toff + ch * s.f;
                  const int32_t* hp = hi.data() + toff + ch * s.f;
                  for (int64_t q = 0; q < nq; ++q) {
                    const int32x4_t l = vld1q_s32(lp + 4 * q);
                    const int32x4_t h = vld1q_s32(hp + 4 * q);
                    al[2 * q] = vmlal_s32(al[2 * q], vget_low_s32(l), xv);
                    al[2 * q + 1] = vmlal_s32(al[2 * q + 1], vget_high_s32(l), xv);
                    ah[2 * q] = vmlal_s32(ah[2 * q], vget_low_s32(h), xv);
                    ah[2 * q + 1] = vmlal_s32(ah[2 * q + 1], vget_high_s32(h), xv);
                  }
                }
              }
            }
            for (int64_t v = 0; v < 2 * nq; ++v) {
              uint64x2_t r = vaddq_u64(vreinterpretq_u64_s64(al[v]),
                                       vshlq_n_u64(vreinterpretq_u64_s64(ah[v]), 32));
              if (bias) r = vaddq_u64(r, vld1q_u64(bias + f0 + 2 * v));
              vst1q_u64(acc_out + f0 + 2 * v, r);
            }
          }
          for (int64_t o = vec_f; o < s.f; ++o) {
            uint64_t acc = bias ? bias[o] : 0;
            for (int64_t ky = ky0; ky < ky1; ++ky)
              for (int64_t kx = kx0; kx < kx1; ++kx) {
                const int64_t* xp = x + in_base + (ky * s.w + kx) * s.c;
                const uint64_t* kp = kern + (ky * s.kw + kx) * s.c * s.f + o;
                for (int64_t ch = 0; ch < s.c; ++ch)
                  acc += static_cast<uint64_t>(xp[ch]) * kp[ch * s.f];
              }
            acc_out[o] = acc;
          }
        });
  });
}

}  // namespace cf
