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

/// Scratch (int64) for limb_patch_sums: the integral image of the padded image.
inline int64_t limb_patch_sums_scratch(const LimbShape& s) {
  return (s.h + s.pad_top + s.pad_bottom + 1) * (s.w + s.pad_left + s.pad_right + 1);
}

/// Patch sums of one image (img: h x w x c), of |x| when `absolute`:
/// out[oy*out_w + ox], the convolution's windows, from an integral image (four
/// reads per window, any stride). Requires |x| < 2^31 (so every partial sum of
/// the at most 2^24 values stays below 2^55).
inline void limb_patch_sums(const LimbShape& s, const int64_t* img, bool absolute, int64_t* out,
                            int64_t* scratch) {
  const int64_t hp = s.h + s.pad_top + s.pad_bottom;
  const int64_t wp = s.w + s.pad_left + s.pad_right;
  const int64_t ld = wp + 1;
  int64_t* integral = scratch;  // (hp + 1) x (wp + 1); row 0 and column 0 are 0
  std::fill(integral, integral + ld, 0);
  for (int64_t y = 0; y < hp; ++y) {
    int64_t* row = integral + (y + 1) * ld;
    const int64_t* above = integral + y * ld;
    const int64_t iy = y - s.pad_top;
    row[0] = 0;
    int64_t running = 0;
    for (int64_t x = 0; x < wp; ++x) {
      const int64_t ix = x - s.pad_left;
      if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w) {
        const int64_t* px = img + (iy * s.w + ix) * s.c;
        for (int64_t ch = 0; ch < s.c; ++ch) running += absolute ? std::llabs(px[ch]) : px[ch];
      }
      row[x + 1] = above[x + 1] + running;
    }
  }
  for (int64_t oy = 0; oy < s.out_h; ++oy) {
    const int64_t* top = integral + oy * s.stride_h * ld;
    const int64_t* bottom = top + s.kh * ld;
    int64_t* dst = out + oy * s.out_w;
    for (int64_t ox = 0; ox < s.out_w; ++ox) {
      const int64_t x0 = ox * s.stride_w;
      dst[ox] = bottom[x0 + s.kw] - top[x0 + s.kw] - bottom[x0] + top[x0];
    }
  }
}

/// Checks |x| < 2^31 and computes the image's patch sums (`sums`, out_h x out_w)
/// and returns its l1 (the max patch sum of |x|; INT64_MAX if some |x| >= 2^31,
/// then `sums` is not filled). `nonneg`: the image has no negative value.
/// `scratch` holds limb_patch_sums_scratch(s) + out_h * out_w int64.
inline int64_t limb_measure_image(const LimbShape& s, const int64_t* __restrict img, int64_t* sums,
                                  bool* nonneg, int64_t* scratch) {
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
