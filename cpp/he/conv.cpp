// Direct convolution (conv.hpp): argument checks, run-time ISA dispatch, the
// scalar reference, and the patch l1 bound. The per-ISA kernels live in
// conv_avx2.cpp, conv_avx512.cpp and conv_neon.cpp.
#include "he/conv.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "he/isa_dispatch.hpp"
#include "he/parallel.hpp"
#include "he/seeded.hpp"

namespace cf {

void check_conv_shape(const ConvShape& s, const char* who) {
  require_arg(!(s.n < 0 || s.h < 1 || s.w < 1 || s.c < 1), who,
              "images must be n x h x w x c with n >= 0 and positive h, w, c");
  require_arg(!(s.kh < 1 || s.kw < 1 || s.f < 1), who,
              "kernels must be kh x kw x c x f with positive kh, kw, f");
  require_arg(
      !(s.stride_h < 1 || s.stride_w < 1), who,
      "strides must be >= 1, got " + std::to_string(s.stride_h) + "x" + std::to_string(s.stride_w));
  require_arg(!(s.pad_top < 0 || s.pad_left < 0 || s.pad_top >= s.kh || s.pad_left >= s.kw), who,
              "padding must satisfy 0 <= pad_top < kh and 0 <= pad_left < kw");
  require_arg(!(s.out_h < 1 || s.out_w < 1), who, "the output must be at least 1x1");
  // Every output window starts inside the padded image (so out_h, out_w are bounded by h, w).
  // The first test bounds the operands of the products in the second (no overflow).
  require_arg(
      !(s.out_h > s.h + s.kh || s.out_w > s.w + s.kw || (s.out_h > 1 && s.stride_h > s.h + s.kh) ||
        (s.out_w > 1 && s.stride_w > s.w + s.kw) || (s.out_h - 1) * s.stride_h - s.pad_top >= s.h ||
        (s.out_w - 1) * s.stride_w - s.pad_left >= s.w),
      who, "output size too large for the image and padding");
  require_arg(!(s.kh > kConvMaxTaps || s.kw > kConvMaxTaps || s.c > kConvMaxTaps ||
                s.kh * s.kw > kConvMaxTaps || s.kh * s.kw * s.c > kConvMaxTaps),
              who, "kh * kw * c must be at most 2^23");
}

void conv_direct_scalar(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, uint64_t* out, int threads) {
  // The same definition as the seeded convolution's reference (wrapping uint64
  // multiply-add over the same geometry): one scalar reference serves both.
  seeded_conv_scalar(s, x, kern, bias, out, threads);
}

namespace {

const IsaTable<decltype(&conv_direct_scalar)> kConvDirect{
    conv_direct_scalar, CF_IF_X86(conv_direct_avx2), CF_IF_X86(conv_direct_avx512),
    CF_IF_NEON(conv_direct_neon)};

}  // namespace

void conv_direct(Isa isa, const ConvShape& s, const int64_t* x, const uint64_t* kern,
                 const uint64_t* bias, uint64_t* out, int threads) {
  check_conv_shape(s, "conv_direct");
  const auto kernel = isa_select(kConvDirect, isa, "conv_direct");
  if (threads < 1) threads = default_threads();
  kernel(s, x, kern, bias, out, threads);
}

uint64_t conv_patch_l1_max(const ConvShape& s, const int64_t* x, int threads) {
  check_conv_shape(s, "conv_patch_l1_max");
  constexpr int64_t kLimit = int64_t{1} << 40;
  const int64_t count = s.n * s.h * s.w * s.c;
  for (int64_t i = 0; i < count; ++i) {
    if (x[i] <= -kLimit || x[i] >= kLimit) {
      throw KernelArgumentError("conv_patch_l1_max: inputs must satisfy |x| < 2^40");
    }
  }
  if (threads < 1) threads = default_threads();
  // Window sums as differences of prefix sums, along x and then along y. The
  // prefix sums may wrap mod 2^64, their differences do not: |x| < 2^40 and at
  // most 2^23 taps keep every window sum below 2^63.
  std::vector<uint64_t> best(static_cast<size_t>(threads), 0);
  const int64_t per = s.n > 0 ? (s.n + threads - 1) / threads : 1;
  parallel_for(s.n, threads, per, [&](int64_t i0, int64_t i1) {
    const int64_t h = s.h, w = s.w, c = s.c, out_w = s.out_w;
    std::vector<uint64_t> prefix(static_cast<size_t>(w + 1), 0);          // along one row
    std::vector<uint64_t> cols(static_cast<size_t>((h + 1) * out_w), 0);  // down the columns
    uint64_t top = 0;
    for (int64_t img = i0; img < i1; ++img) {
      const int64_t* xi = x + img * h * w * c;
      for (int64_t iy = 0; iy < h; ++iy) {
        uint64_t run = 0;
        for (int64_t ix = 0; ix < w; ++ix) {
          for (int64_t ch = 0; ch < c; ++ch) {
            const int64_t v = xi[(iy * w + ix) * c + ch];
            run += static_cast<uint64_t>(v < 0 ? -v : v);
          }
          prefix[static_cast<size_t>(ix + 1)] = run;
        }
        const uint64_t* above = cols.data() + iy * out_w;
        uint64_t* below = cols.data() + (iy + 1) * out_w;
        for (int64_t ox = 0; ox < out_w; ++ox) {
          const int64_t ix0 = ox * s.stride_w - s.pad_left;
          const int64_t lo = std::max<int64_t>(ix0, 0);
          const int64_t hi = std::min<int64_t>(ix0 + s.kw, w);
          below[ox] =
              above[ox] + (prefix[static_cast<size_t>(hi)] - prefix[static_cast<size_t>(lo)]);
        }
      }
      for (int64_t oy = 0; oy < s.out_h; ++oy) {
        const int64_t iy0 = oy * s.stride_h - s.pad_top;
        const uint64_t* lo = cols.data() + std::max<int64_t>(iy0, 0) * out_w;
        const uint64_t* hi = cols.data() + std::min<int64_t>(iy0 + s.kh, h) * out_w;
        for (int64_t ox = 0; ox < out_w; ++ox) top = std::max(top, hi[ox] - lo[ox]);
      }
    }
    best[static_cast<size_t>(i0 / per)] = top;
  });
  return *std::max_element(best.begin(), best.end());
}

}  // namespace cf
