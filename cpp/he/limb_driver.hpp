// The float32 limb-block driver shared by the SIMD paths (AVX2, AVX-512, NEON).
//
// Per image (threads over images): the image is copied once into a zero-padded
// float32 buffer, the patch sums come from limb_sums.hpp, and every output
// pixel's limb convolutions (high and tail, f filters each) are computed by the
// ISA's register-blocked micro-kernel (P pixels x NV vectors of filters, one
// FMA per tap). The
// epilogue (int32: exact, limb_block checked |values| < 2^25) applies the
// offsets, biases and the ReLU predicate and keeps the tail minima/maxima; it
// adds each pixel into its pooling window's int32 accumulators when windows do
// not overlap (Table VI's 2x2 / 2), else stores two int32 planes of the image
// that are pooled after (int64 sums for windows of 64 or more pixels).
//
// Two kinds of work are skipped, both exactly: pixels whose patch is all zero
// (zero patch sum in an image without negative values) have all three
// convolutions 0, so the micro-kernel runs only on the others, P at a time,
// from a list; and the low family is convolved only for pixels where some
// H = 0 (elsewhere ReLU's sign test does not read L).
//
// A Micro provides kLanes (floats per vector), kMaxNV, kP and
//   template <int NV, int P> static void tile(const float* const* xp,
//       const int64_t* tap_offsets, int64_t taps, const float* k, int64_t ldk,
//       float* acc, int64_t ldacc)
// computing acc[p*ldacc + j] = sum_t xp[p][tap_offsets[t]] * k[t*ldk + j]
// for p < P, j < NV * kLanes.
//
// Everything here is in an unnamed namespace: each ISA's translation unit gets
// its own copy compiled with its own flags (no ODR clash between them).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>
#include <vector>

#include "he/limb_kernel.hpp"
#include "he/limb_sums.hpp"
#include "he/parallel.hpp"

namespace cf {
namespace {

template <class Micro, int P>
void limb_tile(int64_t nv, const float* const* xp, const int64_t* toff, int64_t taps,
               const float* k, int64_t ldk, float* acc, int64_t ldacc) {
  switch (nv) {
    case 1:
      Micro::template tile<1, P>(xp, toff, taps, k, ldk, acc, ldacc);
      return;
    case 2:
      Micro::template tile<2, P>(xp, toff, taps, k, ldk, acc, ldacc);
      return;
    case 3:
      Micro::template tile<3, P>(xp, toff, taps, k, ldk, acc, ldacc);
      return;
    case 4:
      Micro::template tile<4, P>(xp, toff, taps, k, ldk, acc, ldacc);
      return;
    case 5:
      Micro::template tile<5, P>(xp, toff, taps, k, ldk, acc, ldacc);
      return;
    default:
      Micro::template tile<6, P>(xp, toff, taps, k, ldk, acc, ldacc);
      return;
  }
}

// The per-pixel epilogue (restrict pointers and branch-free selects, so that the
// compiler vectorizes it with the ISA of the including file). Accumulate: add R
// and max(T, 0) into pooling accumulators instead of storing them. Tails = false:
// the tail family was not convolved; only R is formed (T, rt, mn, mx untouched).
template <bool Accumulate, bool Tails = true>
inline void limb_epilogue(int64_t F, const float* __restrict ah, const float* __restrict al,
                          const float* __restrict at, int32_t os0, int32_t os1, int32_t os2,
                          const int32_t* __restrict bh, const int32_t* __restrict bl,
                          const int32_t* __restrict bt, int32_t* __restrict rh,
                          int32_t* __restrict rt, int32_t* __restrict mn, int32_t* __restrict mx) {
  for (int64_t o = 0; o < F; ++o) {
    const int32_t hv = static_cast<int32_t>(ah[o]) + (os0 + bh[o]);
    const int32_t lv = static_cast<int32_t>(al[o]) + (os1 + bl[o]);
    const int32_t sign = hv != 0 ? hv : lv;  // the sign of 2^S H + L (|L| < 2^(S-1))
    if (Accumulate) {
      rh[o] += sign > 0 ? hv : 0;
    } else {
      rh[o] = sign > 0 ? hv : 0;
    }
    if (Tails) {
      const int32_t tv = static_cast<int32_t>(at[o]) + (os2 + bt[o]);
      mn[o] = mn[o] < tv ? mn[o] : tv;
      mx[o] = mx[o] > tv ? mx[o] : tv;
      if (Accumulate) {
        rt[o] += tv > 0 ? tv : 0;
      } else {
        rt[o] = tv > 0 ? tv : 0;
      }
    }
  }
}

inline void limb_add_scaled(int64_t F, int32_t k, const int32_t* __restrict vh,
                            const int32_t* __restrict vt, int32_t* __restrict high,
                            int32_t* __restrict tail) {
  for (int64_t o = 0; o < F; ++o) {
    high[o] += k * vh[o];
    tail[o] += k * vt[o];
  }
}

/// Whether some H = conv_high + os0 + b_high of one pixel is 0.
inline bool limb_high_has_zero(int64_t F, const float* __restrict ah, int32_t os0,
                               const int32_t* __restrict bh) {
  int32_t zeros = 0;
  for (int64_t o = 0; o < F; ++o) zeros += (static_cast<int32_t>(ah[o]) + (os0 + bh[o])) == 0;
  return zeros != 0;
}

template <typename Acc>
inline void limb_pool_add(int64_t F, const int32_t* __restrict rh, const int32_t* __restrict rt,
                          Acc* __restrict high, Acc* __restrict tail) {
  for (int64_t o = 0; o < F; ++o) {
    high[o] += rh[o];
    tail[o] += rt[o];
  }
}

/// Stores one pooled pixel's F features (int64 words, or float32 value / scale:
/// a vectorizable loop of IEEE divisions, each rounded once as LimbOut::store
/// does, with the same range check) and, unless tail_max is null (tails not
/// measured), folds its pooled tails into tail_max.
template <typename Acc>
inline void limb_pool_store(int64_t F, const Acc* __restrict high, const Acc* __restrict tail,
                            const LimbOut& out, int64_t at, int64_t* __restrict tail_max) {
  if (out.words != nullptr) {  // the common int64 case stays a plain vectorizable loop
    int64_t* __restrict dst = out.words + at;
    for (int64_t o = 0; o < F; ++o) dst[o] = high[o];
  } else {
    float* __restrict dst = out.quotients + at;
    const float scale = out.scale;
    int32_t outside = 0;
    for (int64_t o = 0; o < F; ++o) {
      const int64_t v = high[o];
      outside |= static_cast<int32_t>(v <= -kLimbExact) | static_cast<int32_t>(v >= kLimbExact);
      dst[o] = static_cast<float>(v) / scale;
    }
    if (outside != 0) out.inexact.store(true, std::memory_order_relaxed);
  }
  if (tail_max == nullptr) return;
  for (int64_t o = 0; o < F; ++o) tail_max[o] = tail_max[o] > tail[o] ? tail_max[o] : tail[o];
}

/// Sum pooling of one image's rectified planes (out_h x out_w x F) into dst
/// (pooled_h x pooled_w x F), and the pooled tails' maxima into tail_max. Acc
/// int32 is exact when pool_h * pool_w < 64 (every plane value is below 2^25).
template <typename Acc>
void limb_pool(const LimbShape& s, const int32_t* relu_high, const int32_t* relu_tail, Acc* acc,
               const LimbOut& out, int64_t at, int64_t* tail_max) {
  const int64_t F = s.f;
  for (int64_t py = 0; py < s.pooled_h; ++py) {
    for (int64_t px = 0; px < s.pooled_w; ++px) {
      std::fill(acc, acc + 2 * F, Acc{0});
      for (int64_t wy = 0; wy < s.pool_h; ++wy) {
        for (int64_t wx = 0; wx < s.pool_w; ++wx) {
          const int64_t pix = (py * s.pool_sh + wy) * s.out_w + px * s.pool_sw + wx;
          limb_pool_add(F, relu_high + pix * F, relu_tail + pix * F, acc, acc + F);
        }
      }
      limb_pool_store(F, acc, acc + F, out, at + (py * s.pooled_w + px) * F, tail_max);
    }
  }
}

template <class Micro>
LimbTails limb_block_float(const LimbShape& s, const int64_t* x, const int64_t* kern,
                           const int64_t* offsets, const int64_t* bias, const LimbOut& out,
                           int threads, bool tails, LimbGate& gate) {
  static_assert(Micro::kMaxNV >= 1 && Micro::kMaxNV <= 6, "kMaxNV must be in 1..6");
  constexpr int64_t V = Micro::kLanes;
  constexpr int P = Micro::kP;
  const int64_t F = s.f;
  const int64_t Fp = (F + V - 1) / V * V;  // each family padded to whole vectors
  const int64_t ldk = 3 * Fp;
  const int64_t taps = s.kh * s.kw * s.c;
  const int64_t hp = s.h + s.pad_top + s.pad_bottom;
  const int64_t wp = s.w + s.pad_left + s.pad_right;
  const int64_t pixels = s.out_h * s.out_w;
  // The vectors of filters every active pixel convolves: high and, when measured, tail.
  const int64_t main_vectors = (tails ? 2 : 1) * Fp / V;

  // Kernels as float (exact: |k| < 2^24), side by side in the order high, tail,
  // low: kf[t][slot(j)*Fp + f]. The low family is only needed where H = 0
  // (ReLU's sign test), so it is computed per pixel on demand.
  std::vector<float> kf(static_cast<size_t>(taps * ldk), 0.0f);
  const int64_t slot[3] = {0, 2, 1};
  for (int64_t j = 0; j < 3; ++j)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t o = 0; o < F; ++o)
        kf[static_cast<size_t>(t * ldk + slot[j] * Fp + o)] =
            static_cast<float>(kern[(j * taps + t) * F + o]);
  std::vector<int64_t> toff(static_cast<size_t>(taps));
  for (int64_t ky = 0; ky < s.kh; ++ky)
    for (int64_t kx = 0; kx < s.kw; ++kx)
      for (int64_t ch = 0; ch < s.c; ++ch)
        toff[static_cast<size_t>((ky * s.kw + kx) * s.c + ch)] = (ky * wp + kx) * s.c + ch;
  std::vector<int32_t> b32(static_cast<size_t>(3 * F));
  for (int64_t i = 0; i < 3 * F; ++i) b32[static_cast<size_t>(i)] = static_cast<int32_t>(bias[i]);

  // Per output pixel, once: the offset of its patch in the padded image and its
  // pooling window (pooled_h * pooled_w when it lies in none), so that the
  // per-pixel loops do no divisions.
  const int64_t pooled = s.pooled_h * s.pooled_w;
  std::vector<int64_t> patch_at(static_cast<size_t>(pixels));
  std::vector<int64_t> window_of(static_cast<size_t>(pixels));
  for (int64_t oy = 0; oy < s.out_h; ++oy) {
    for (int64_t ox = 0; ox < s.out_w; ++ox) {
      const int64_t pix = oy * s.out_w + ox;
      const int64_t py = oy / s.pool_sh, px = ox / s.pool_sw;
      const bool inside = oy % s.pool_sh < s.pool_h && ox % s.pool_sw < s.pool_w &&
                          py < s.pooled_h && px < s.pooled_w;
      patch_at[static_cast<size_t>(pix)] = (oy * s.stride_h * wp + ox * s.stride_w) * s.c;
      window_of[static_cast<size_t>(pix)] = inside ? py * s.pooled_w + px : pooled;
    }
  }

  LimbTails total{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                  std::numeric_limits<int64_t>::min()};
  std::mutex total_mutex;
  parallel_for(s.n, threads, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> xpad(static_cast<size_t>(hp * wp * s.c), 0.0f);
    std::vector<float> acc(static_cast<size_t>(P * ldk));
    std::vector<int64_t> sums(static_cast<size_t>(pixels));
    std::vector<int64_t> scratch(static_cast<size_t>(limb_patch_sums_scratch(s) + pixels));
    const std::vector<float> zeros(static_cast<size_t>(ldk), 0.0f);
    std::vector<int64_t> active(static_cast<size_t>(pixels));
    // Windows that never overlap (stride >= window) and hold under 64 pixels:
    // each pixel is added straight into its window's int32 accumulators (exact,
    // see limb_pool). Otherwise the rectified planes are stored and pooled after.
    const bool fused = s.pool_sh >= s.pool_h && s.pool_sw >= s.pool_w && s.pool_h * s.pool_w < 64;
    std::vector<int32_t> relu_high(static_cast<size_t>(fused ? (pooled + 1) * F : pixels * F), 0);
    std::vector<int32_t> relu_tail(relu_high.size(), 0);
    std::vector<int32_t> tmin(static_cast<size_t>(F), std::numeric_limits<int32_t>::max());
    std::vector<int32_t> tmax(static_cast<size_t>(F), std::numeric_limits<int32_t>::min());
    std::vector<int64_t> ptmax(static_cast<size_t>(F), std::numeric_limits<int64_t>::min());
    int64_t* const pooled_tails = tails ? ptmax.data() : nullptr;  // null: not measured
    std::vector<int32_t> pool32(static_cast<size_t>(2 * F));
    std::vector<int64_t> pool64(static_cast<size_t>(2 * F));
    const int32_t* bh = b32.data();
    const int32_t* bl = b32.data() + F;
    const int32_t* bt = b32.data() + 2 * F;
    const int64_t o0 = offsets[0], o1 = offsets[1], o2 = offsets[2];
    // An all-zero patch gives the same R, max(T, 0) and T at every pixel (its patch
    // sum is 0 too): computed once here; with fused pooling those pixels are only
    // counted per window and added as count * value at the end of the image.
    std::vector<int32_t> zero_high(static_cast<size_t>(F)), zero_tail(static_cast<size_t>(F));
    std::vector<int32_t> zero_t(static_cast<size_t>(F), std::numeric_limits<int32_t>::max());
    std::vector<int32_t> zero_t_max(static_cast<size_t>(F), std::numeric_limits<int32_t>::min());
    limb_epilogue<false>(F, zeros.data(), zeros.data(), zeros.data(), 0, 0, 0, bh, bl, bt,
                         zero_high.data(), zero_tail.data(), zero_t.data(), zero_t_max.data());
    std::vector<int32_t> zero_count(static_cast<size_t>(pooled + 1));

    for (int64_t img = i0; img < i1; ++img) {
      const int64_t* xi = x + img * s.h * s.w * s.c;
      const int64_t* si = sums.data();
      bool nonneg = false;
      if (!gate.admit(limb_measure_image(s, xi, sums.data(), &nonneg, scratch.data()))) {
        continue;  // declined: later images are only measured (the reported l1)
      }
      for (int64_t y = 0; y < s.h; ++y) {
        float* row = xpad.data() + ((y + s.pad_top) * wp + s.pad_left) * s.c;
        const int64_t* src = xi + y * s.w * s.c;
        for (int64_t q = 0; q < s.w * s.c; ++q) row[q] = static_cast<float>(src[q]);
      }
      // acc holds high | tail | low; `low` is only read where some H is 0.
      auto finish = [&](int64_t pix, const float* a, const float* low) {
        const int64_t sp = si[pix];
        const int32_t os0 = static_cast<int32_t>(o0 * sp);
        const int32_t os1 = static_cast<int32_t>(o1 * sp);
        const int32_t os2 = static_cast<int32_t>(o2 * sp);
        int32_t* rh = relu_high.data() + pix * F;
        int32_t* rt = relu_tail.data() + pix * F;
        if (fused) {
          const int64_t win = window_of[static_cast<size_t>(pix)];  // `pooled`: discarded
          rh = relu_high.data() + win * F;
          rt = relu_tail.data() + win * F;
        }
        if (fused && tails) {
          limb_epilogue<true, true>(F, a, low, a + Fp, os0, os1, os2, bh, bl, bt, rh, rt,
                                    tmin.data(), tmax.data());
        } else if (fused) {
          limb_epilogue<true, false>(F, a, low, a + Fp, os0, os1, os2, bh, bl, bt, rh, rt,
                                     tmin.data(), tmax.data());
        } else if (tails) {
          limb_epilogue<false, true>(F, a, low, a + Fp, os0, os1, os2, bh, bl, bt, rh, rt,
                                     tmin.data(), tmax.data());
        } else {
          limb_epilogue<false, false>(F, a, low, a + Fp, os0, os1, os2, bh, bl, bt, rh, rt,
                                      tmin.data(), tmax.data());
        }
      };
      int64_t count = 0;
      bool any_zero = false;
      for (int64_t pix = 0; pix < pixels; ++pix) {
        if (nonneg && si[pix] == 0) {  // an all-zero patch: every convolution is 0
          any_zero = true;
          if (fused) {
            ++zero_count[static_cast<size_t>(window_of[static_cast<size_t>(pix)])];
          } else {
            std::copy(zero_high.begin(), zero_high.end(), relu_high.begin() + pix * F);
            std::copy(zero_tail.begin(), zero_tail.end(), relu_tail.begin() + pix * F);
          }
        } else {
          active[static_cast<size_t>(count++)] = pix;
        }
      }
      if (any_zero) {
        for (size_t o = 0; o < static_cast<size_t>(F); ++o) {
          tmin[o] = std::min(tmin[o], zero_t[o]);
          tmax[o] = std::max(tmax[o], zero_t[o]);
        }
      }
      const float* xps[P];
      for (int64_t a0 = 0; a0 < count; a0 += P) {
        const int64_t np = std::min<int64_t>(P, count - a0);
        for (int64_t p = 0; p < np; ++p) {
          const int64_t pix = active[static_cast<size_t>(a0 + p)];
          xps[p] = xpad.data() + patch_at[static_cast<size_t>(pix)];
        }
        for (int64_t v0 = 0; v0 < main_vectors; v0 += Micro::kMaxNV) {  // high (and tail)
          const int64_t nv = std::min<int64_t>(Micro::kMaxNV, main_vectors - v0);
          if (np == P) {
            limb_tile<Micro, P>(nv, xps, toff.data(), taps, kf.data() + v0 * V, ldk,
                                acc.data() + v0 * V, ldk);
          } else {
            for (int64_t p = 0; p < np; ++p)
              limb_tile<Micro, 1>(nv, xps + p, toff.data(), taps, kf.data() + v0 * V, ldk,
                                  acc.data() + p * ldk + v0 * V, ldk);
          }
        }
        for (int64_t p = 0; p < np; ++p) {
          const int64_t pix = active[static_cast<size_t>(a0 + p)];
          float* a = acc.data() + p * ldk;
          const float* low = zeros.data();
          if (limb_high_has_zero(F, a, static_cast<int32_t>(o0 * si[pix]), bh)) {
            for (int64_t v0 = 2 * Fp / V; v0 < ldk / V; v0 += Micro::kMaxNV) {
              const int64_t nv = std::min<int64_t>(Micro::kMaxNV, ldk / V - v0);
              limb_tile<Micro, 1>(nv, xps + p, toff.data(), taps, kf.data() + v0 * V, ldk,
                                  a + v0 * V, ldk);
            }
            low = a + 2 * Fp;
          }
          finish(pix, a, low);
        }
      }

      const int64_t oi = img * s.pooled_h * s.pooled_w * F;  // this image's first output
      if (fused) {
        for (int64_t q = 0; q < pooled; ++q) {
          const int32_t zc = zero_count[static_cast<size_t>(q)];
          if (zc != 0) {  // zc * value < 64 * 2^25: exact in int32
            limb_add_scaled(F, zc, zero_high.data(), zero_tail.data(), relu_high.data() + q * F,
                            relu_tail.data() + q * F);
          }
          limb_pool_store(F, relu_high.data() + q * F, relu_tail.data() + q * F, out, oi + q * F,
                          pooled_tails);
        }
        std::fill(relu_high.begin(), relu_high.end(), 0);
        std::fill(relu_tail.begin(), relu_tail.end(), 0);
        std::fill(zero_count.begin(), zero_count.end(), 0);
      } else if (s.pool_h * s.pool_w < 64) {
        limb_pool(s, relu_high.data(), relu_tail.data(), pool32.data(), out, oi, pooled_tails);
      } else {
        limb_pool(s, relu_high.data(), relu_tail.data(), pool64.data(), out, oi, pooled_tails);
      }
    }
    if (i0 < i1) {
      std::lock_guard<std::mutex> lock(total_mutex);
      for (int64_t o = 0; o < F; ++o) {
        total.tail_min = std::min<int64_t>(total.tail_min, tmin[static_cast<size_t>(o)]);
        total.tail_max = std::max<int64_t>(total.tail_max, tmax[static_cast<size_t>(o)]);
        total.pooled_tail_max = std::max(total.pooled_tail_max, ptmax[static_cast<size_t>(o)]);
      }
    }
  });
  return total;
}

}  // namespace
}  // namespace cf
