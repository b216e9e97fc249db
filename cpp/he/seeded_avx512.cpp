// AVX-512 seeded convolution (AVX-512F): the AVX2 scheme (seeded.hpp split,
// vpmuldq low and high products, combined once per output) on 8-lane
// vectors, 32 filters per pass, two adjacent output pixels per pass where
// they read the same taps. Bit-identical to seeded_conv_scalar (tested).
// GCC 12's AVX-512 intrinsics pass an "undefined" vector as the unused mask
// operand, which -W(maybe-)uninitialized reports from inside the header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "he/parallel.hpp"
#include "he/seeded.hpp"

namespace cf {

namespace {

constexpr int64_t kLanes = 8;
constexpr int64_t kChunk = 32;  // filters per pass: 4 low + 4 high zmm accumulators

}  // namespace

void seeded_conv_avx512(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, uint64_t* out, int threads) {
  const int64_t taps = s.kh * s.kw * s.c;
  std::vector<int64_t> lo(static_cast<size_t>(taps * s.f));
  std::vector<int64_t> hi(lo.size());
  for (size_t i = 0; i < lo.size(); ++i) {
    lo[i] = split_lo(kern[i]);
    hi[i] = split_hi(kern[i]);
  }
  const int64_t vec_f = s.f / kLanes * kLanes;
  const int64_t* lop = lo.data();
  const int64_t* hip = hi.data();
  // One output pixel, filters [f0, f0 + 8 * nv).
  auto single = [&](int64_t pix, int64_t ky0, int64_t ky1, int64_t kx0, int64_t kx1,
                    int64_t in_base, int64_t f0, int64_t nv) {
    __m512i al[4], ah[4];
    for (int v = 0; v < 4; ++v) {
      al[v] = _mm512_setzero_si512();
      ah[v] = _mm512_setzero_si512();
    }
    for (int64_t ky = ky0; ky < ky1; ++ky) {
      for (int64_t kx = kx0; kx < kx1; ++kx) {
        const int64_t* xp = x + in_base + (ky * s.w + kx) * s.c;
        const int64_t toff = (ky * s.kw + kx) * s.c * s.f + f0;
        for (int64_t ch = 0; ch < s.c; ++ch) {
          const __m512i xv = _mm512_set1_epi64(xp[ch]);
          const int64_t* lp = lop + toff + ch * s.f;
          const int64_t* hp = hip + toff + ch * s.f;
          for (int64_t v = 0; v < nv; ++v) {
            const __m512i l = _mm512_loadu_si512(lp + 8 * v);
            const __m512i h = _mm512_loadu_si512(hp + 8 * v);
            al[v] = _mm512_add_epi64(al[v], _mm512_mul_epi32(l, xv));
            ah[v] = _mm512_add_epi64(ah[v], _mm512_mul_epi32(h, xv));
          }
        }
      }
    }
    uint64_t* dst = out + pix * s.f;
    for (int64_t v = 0; v < nv; ++v) {
      __m512i r = _mm512_add_epi64(al[v], _mm512_slli_epi64(ah[v], 32));
      if (bias) r = _mm512_add_epi64(r, _mm512_loadu_si512(bias + f0 + 8 * v));
      _mm512_storeu_si512(dst + f0 + 8 * v, r);
    }
  };
  // Two horizontally adjacent pixels with the same taps inside the image, 32
  // filters: the split kernel words are loaded once for both (16 accumulators).
  auto pair = [&](int64_t pix, int64_t ky0, int64_t ky1, int64_t kx0, int64_t kx1, int64_t in_base,
                  int64_t f0) {
    __m512i a0[4], b0[4], a1[4], b1[4];
    for (int v = 0; v < 4; ++v) {
      a0[v] = _mm512_setzero_si512();
      b0[v] = _mm512_setzero_si512();
      a1[v] = _mm512_setzero_si512();
      b1[v] = _mm512_setzero_si512();
    }
    const int64_t step = s.stride_w * s.c;
    for (int64_t ky = ky0; ky < ky1; ++ky) {
      for (int64_t kx = kx0; kx < kx1; ++kx) {
        const int64_t* xp = x + in_base + (ky * s.w + kx) * s.c;
        const int64_t toff = (ky * s.kw + kx) * s.c * s.f + f0;
        for (int64_t ch = 0; ch < s.c; ++ch) {
          const __m512i x0 = _mm512_set1_epi64(xp[ch]);
          const __m512i x1 = _mm512_set1_epi64(xp[ch + step]);
          const int64_t* lp = lop + toff + ch * s.f;
          const int64_t* hp = hip + toff + ch * s.f;
          for (int v = 0; v < 4; ++v) {
            const __m512i l = _mm512_loadu_si512(lp + 8 * v);
            const __m512i h = _mm512_loadu_si512(hp + 8 * v);
            a0[v] = _mm512_add_epi64(a0[v], _mm512_mul_epi32(l, x0));
            b0[v] = _mm512_add_epi64(b0[v], _mm512_mul_epi32(h, x0));
            a1[v] = _mm512_add_epi64(a1[v], _mm512_mul_epi32(l, x1));
            b1[v] = _mm512_add_epi64(b1[v], _mm512_mul_epi32(h, x1));
          }
        }
      }
    }
    uint64_t* d0 = out + pix * s.f + f0;
    uint64_t* d1 = d0 + s.f;
    for (int v = 0; v < 4; ++v) {
      __m512i r0 = _mm512_add_epi64(a0[v], _mm512_slli_epi64(b0[v], 32));
      __m512i r1 = _mm512_add_epi64(a1[v], _mm512_slli_epi64(b1[v], 32));
      if (bias) {
        const __m512i bv = _mm512_loadu_si512(bias + f0 + 8 * v);
        r0 = _mm512_add_epi64(r0, bv);
        r1 = _mm512_add_epi64(r1, bv);
      }
      _mm512_storeu_si512(d0 + 8 * v, r0);
      _mm512_storeu_si512(d1 + 8 * v, r1);
    }
  };
  auto tail = [&](int64_t pix, int64_t ky0, int64_t ky1, int64_t kx0, int64_t kx1,
                  int64_t in_base) {
    for (int64_t o = vec_f; o < s.f; ++o) {
      uint64_t acc = bias ? bias[o] : 0;
      for (int64_t ky = ky0; ky < ky1; ++ky)
        for (int64_t kx = kx0; kx < kx1; ++kx) {
          const int64_t* xp = x + in_base + (ky * s.w + kx) * s.c;
          const uint64_t* kp = kern + (ky * s.kw + kx) * s.c * s.f + o;
          for (int64_t ch = 0; ch < s.c; ++ch) acc += static_cast<uint64_t>(xp[ch]) * kp[ch * s.f];
        }
      out[pix * s.f + o] = acc;
    }
  };
  parallel_for(s.n * s.out_h, threads, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t img = r / s.out_h;
      const int64_t oy = r % s.out_h;
      const int64_t iy0 = oy * s.stride_h - s.pad_top;
      const int64_t ky0 = iy0 < 0 ? -iy0 : 0;
      const int64_t ky1 = iy0 + s.kh > s.h ? s.h - iy0 : s.kh;
      auto kx_range = [&](int64_t ox, int64_t& kx0, int64_t& kx1) {
        const int64_t ix0 = ox * s.stride_w - s.pad_left;
        kx0 = ix0 < 0 ? -ix0 : 0;
        kx1 = ix0 + s.kw > s.w ? s.w - ix0 : s.kw;
        return ((img * s.h + iy0) * s.w + ix0) * s.c;
      };
      int64_t ox = 0;
      while (ox < s.out_w) {
        int64_t kx0, kx1, nx0 = 0, nx1 = 0;
        const int64_t in_base = kx_range(ox, kx0, kx1);
        bool paired = false;
        if (ox + 1 < s.out_w) {
          kx_range(ox + 1, nx0, nx1);
          paired = nx0 == kx0 && nx1 == kx1;
        }
        const int64_t pix = r * s.out_w + ox;
        for (int64_t f0 = 0; f0 < vec_f; f0 += kChunk) {
          const int64_t nv = std::min<int64_t>(kChunk, vec_f - f0) / kLanes;
          if (paired && nv == 4) {
            pair(pix, ky0, ky1, kx0, kx1, in_base, f0);
          } else {
            single(pix, ky0, ky1, kx0, kx1, in_base, f0, nv);
            if (paired) single(pix + 1, ky0, ky1, kx0, kx1, in_base + s.stride_w * s.c, f0, nv);
          }
        }
        tail(pix, ky0, ky1, kx0, kx1, in_base);
        if (paired) tail(pix + 1, ky0, ky1, kx0, kx1, in_base + s.stride_w * s.c);
        ox += paired ? 2 : 1;
      }
    }
  });
}

}  // namespace cf
