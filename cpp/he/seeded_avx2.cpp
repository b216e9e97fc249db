// AVX2 seeded convolution: every kernel word is split into a signed low half
// and a high half (seeded.hpp), so x * word mod 2^64 is two vpmuldq products;
// the low and high products accumulate separately and combine once per output.
// Bit-identical to seeded_conv_scalar (tested).
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "he/parallel.hpp"
#include "he/seeded.hpp"

namespace cf {

namespace {

constexpr int64_t kLanes = 4;
constexpr int64_t kChunk = 16;  // filters per pass: 4 low + 4 high accumulators

inline __m256i load(const int64_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

}  // namespace

void seeded_conv_avx2(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads) {
  const int64_t taps = s.kh * s.kw * s.c;
  std::vector<int64_t> lo(static_cast<size_t>(taps * s.f));
  std::vector<int64_t> hi(lo.size());
  for (size_t i = 0; i < lo.size(); ++i) {
    lo[i] = split_lo(kern[i]);
    hi[i] = split_hi(kern[i]);
  }
  const int64_t vec_f = s.f / kLanes * kLanes;
  parallel_for(s.n * s.out_h, threads, 1, [&](int64_t r0, int64_t r1) {
    for_each_output(
        s, r0, r1,
        [&](int64_t pix, int64_t ky0, int64_t ky1, int64_t kx0, int64_t kx1, int64_t in_base) {
          uint64_t* acc_out = out + pix * s.f;
          for (int64_t f0 = 0; f0 < vec_f; f0 += kChunk) {
            const int64_t nv = std::min<int64_t>(kChunk, vec_f - f0) / kLanes;
            __m256i al[4], ah[4];
            for (int v = 0; v < 4; ++v) {
              al[v] = _mm256_setzero_si256();
              ah[v] = _mm256_setzero_si256();
            }
            for (int64_t ky = ky0; ky < ky1; ++ky) {
              for (int64_t kx = kx0; kx < kx1; ++kx) {
                const int64_t* xp = x + in_base + (ky * s.w + kx) * s.c;
                const int64_t toff = (ky * s.kw + kx) * s.c * s.f + f0;
                for (int64_t ch = 0; ch < s.c; ++ch) {
                  const __m256i xv = _mm256_set1_epi64x(xp[ch]);
                  const int64_t* lp = lo.data() + toff + ch * s.f;
                  const int64_t* hp = hi.data() + toff + ch * s.f;
                  if (nv == 4) {
                    for (int v = 0; v < 4; ++v) {
                      const __m256i l = load(lp + 4 * v);
                      const __m256i h = load(hp + 4 * v);
                      al[v] = _mm256_add_epi64(al[v], _mm256_mul_epi32(l, xv));
                      ah[v] = _mm256_add_epi64(ah[v], _mm256_mul_epi32(h, xv));
                    }
                  } else {
                    for (int64_t v = 0; v < nv; ++v) {
                      const __m256i l = load(lp + 4 * v);
                      const __m256i h = load(hp + 4 * v);
                      al[v] = _mm256_add_epi64(al[v], _mm256_mul_epi32(l, xv));
                      ah[v] = _mm256_add_epi64(ah[v], _mm256_mul_epi32(h, xv));
                    }
                  }
                }
              }
            }
            for (int64_t v = 0; v < nv; ++v) {
              __m256i r = _mm256_add_epi64(al[v], _mm256_slli_epi64(ah[v], 32));
              if (bias) {
                r = _mm256_add_epi64(
                    r, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + f0 + 4 * v)));
              }
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_out + f0 + 4 * v), r);
            }
          }
          // Filters beyond the last multiple of 4: wrapping scalar multiply-add.
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
