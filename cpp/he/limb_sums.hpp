// Patch sums and the per-image l1 of the limb block (limb_kernel.hpp), shared
// by every ISA's body. In an unnamed namespace: each translation unit compiles
// its own copy with its own flags (no ODR clash); the results are exact int64
// sums, identical whatever the ISA, so every path admits the same images.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "he/limb_kernel.hpp"

namespace cf {
namespace {

/// Scratch (int64) for limb_patch_sums and limb_measure_image.
inline int64_t limb_patch_sums_scratch(const LimbShape& s) {
  const int64_t hp = s.h + s.pad_top + s.pad_bottom;
  const int64_t wp = s.w + s.pad_left + s.pad_right;
  return hp * wp + hp * s.out_w;
}

/// Patch sums of one image (img: h x w x c), of |x| when `absolute`:
/// out[oy*out_w + ox], the convolution's windows. Requires |x| < 2^31.
inline void limb_patch_sums(const LimbShape& s, const int64_t* img, bool absolute, int64_t* out,
                            int64_t* scratch) {
  const int64_t hp = s.h + s.pad_top + s.pad_bottom;
  const int64_t wp = s.w + s.pad_left + s.pad_right;
  int64_t* plane = scratch;  // channel sums, zero-padded: hp x wp
  int64_t* rows = scratch + hp * wp;  // horizontal window sums: hp x out_w
  std::fill(plane, plane + hp * wp, 0);
  for (int64_t y = 0; y < s.h; ++y) {
    int64_t* __restrict dst = plane + (y + s.pad_top) * wp + s.pad_left;
    const int64_t* __restrict src = img + y * s.w * s.c;
    for (int64_t ch = 0; ch < s.c; ++ch) {
      if (absolute) {
        for (int64_t q = 0; q < s.w; ++q) dst[q] += std::llabs(src[q * s.c + ch]);
      } else {
        for (int64_t q = 0; q < s.w; ++q) dst[q] += src[q * s.c + ch];
      }
    }
  }
  for (int64_t y = 0; y < hp; ++y) {
    int64_t* __restrict r = rows + y * s.out_w;
    const int64_t* __restrict p = plane + y * wp;
    std::fill(r, r + s.out_w, 0);
    for (int64_t kx = 0; kx < s.kw; ++kx) {
      if (s.stride_w == 1) {
        for (int64_t ox = 0; ox < s.out_w; ++ox) r[ox] += p[ox + kx];
      } else {
        for (int64_t ox = 0; ox < s.out_w; ++ox) r[ox] += p[ox * s.stride_w + kx];
      }
    }
  }
  for (int64_t oy = 0; oy < s.out_h; ++oy) {
    int64_t* dst = out + oy * s.out_w;
    std::fill(dst, dst + s.out_w, 0);
    for (int64_t ky = 0; ky < s.kh; ++ky) {
      const int64_t* r = rows + (oy * s.stride_h + ky) * s.out_w;
      for (int64_t ox = 0; ox < s.out_w; ++ox) dst[ox] += r[ox];
    }
  }
}

/// Checks |x| < 2^31 and computes the image's patch sums (`sums`, out_h x out_w)
/// and returns its l1 (the max patch sum of |x|; INT64_MAX if some |x| >= 2^31,
/// then `sums` is not filled). `nonneg`: the image has no negative value.
/// `scratch` holds limb_patch_sums_scratch(s) + out_h * out_w int64.
inline int64_t limb_measure_image(const LimbShape& s, const int64_t* __restrict img,
                                  int64_t* sums, bool* nonneg, int64_t* scratch) {
  const int64_t count = s.h * s.w * s.c;
  int64_t lo = 0, hi = 0;
  for (int64_t q = 0; q < count; ++q) {
    lo = img[q] < lo ? img[q] : lo;
    hi = img[q] > hi ? img[q] : hi;
  }
  *nonneg = lo >= 0;
  if (lo <= -(int64_t{1} << 31) || hi >= (int64_t{1} << 31)) {
    return std::numeric_limits<int64_t>::max();
  }
  const int64_t pixels = s.out_h * s.out_w;
  limb_patch_sums(s, img, false, sums, scratch);
  if (lo >= 0) return *std::max_element(sums, sums + pixels);
  int64_t* abs_sums = scratch + limb_patch_sums_scratch(s);
  limb_patch_sums(s, img, true, abs_sums, scratch);
  return *std::max_element(abs_sums, abs_sums + pixels);
}

}  // namespace
}  // namespace cf
