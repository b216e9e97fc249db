// The implicit-im2col direct convolution driver shared by the SIMD paths
// (AVX2, AVX-512, NEON); conv.hpp states what it computes.
//
// Every kernel word is cut into `limbs` limbs (gemm_plan.hpp) and packed once
// as float64 panels of NR columns. Each thread takes a contiguous range of
// output pixels, converts the image it is in once to a zero-padded float64
// copy (so that every tap is inside it), and for every block of MR pixels
// copies their patches (kh rows of kw * c values) into an MR x K float64
// block: no patch matrix is materialised. The ISA's micro-kernel multiplies
// that block by a limb panel over k-blocks short enough that every partial sum
// is an exact integer below 2^51, converts the sums to int64, shifts them into
// place and adds them (wrapping) into an MR x f' word buffer (f' = f rounded up
// to NR), which is then written to the output once, contiguously (the block's
// pixels are adjacent rows of the NHWC output). A Kernel provides MR, NR,
//   static void run(int64_t kc, const double* A, int64_t lda, const double* B, int shift,
//                   const uint64_t* init, uint64_t* dst, int64_t ldd)
// doing, for r < MR and c < NR, with sum = sum_p A[r*lda + p] * B[p*NR + c] (exact):
//   dst[r*ldd + c] = (init ? init[c] : dst[r*ldd + c]) + (uint64(int64(sum)) << shift),
// and
//   static void store(uint64_t* dst, const uint64_t* src, int64_t count)
//   static void finish()
// (the copy of finished words to the output, and what a thread does after its last store).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "he/conv.hpp"
#include "he/gemm_driver.hpp"
#include "he/gemm_plan.hpp"
#include "he/parallel.hpp"

namespace cf {

/// Largest |x| over the n*h*w*c images (as an unsigned magnitude).
inline uint64_t conv_max_abs(const ConvShape& s, const int64_t* x) {
  const View2D<const int64_t> all{x, 1, s.n * s.h * s.w * s.c, 0, 1};
  return max_abs(all);
}

template <class Kernel>
void conv_direct_driver(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, uint64_t* out, int threads, const LimbPlan& plan) {
  constexpr int MR = Kernel::MR;
  constexpr int NR = Kernel::NR;
  const int64_t taps = s.kh * s.kw * s.c;
  const int64_t f = s.f;
  const int64_t col_blocks = (f + NR - 1) / NR;
  const int64_t ldd = col_blocks * NR;
  const int limbs = plan.limbs;
  const int lb = plan.limb_bits;
  const int64_t kc_max = plan.kc;
  const uint64_t limb_mask = (uint64_t{1} << lb) - 1;  // lb <= 32

  // B[((jb * limbs + l) * taps + p) * NR + c] = limb l of kern[p, jb * NR + c] (0 past f).
  std::vector<double> B(static_cast<size_t>(col_blocks * limbs * taps * NR), 0.0);
  for (int64_t jb = 0; jb < col_blocks; ++jb) {
    const int64_t cols = std::min<int64_t>(NR, f - jb * NR);
    for (int l = 0; l < limbs; ++l) {
      double* panel = B.data() + (jb * limbs + l) * taps * NR;
      for (int64_t p = 0; p < taps; ++p) {
        const uint64_t* src = kern + p * f + jb * NR;
        for (int64_t c = 0; c < cols; ++c) {
          panel[p * NR + c] = limb_to_double((src[c] >> (l * lb)) & limb_mask);
        }
      }
    }
  }
  std::vector<uint64_t> init(static_cast<size_t>(ldd), 0);  // the bias, zero padded
  if (bias) std::copy(bias, bias + f, init.begin());

  // The zero-padded image covers exactly the windows of the output.
  const int64_t h = s.h, w = s.w, c = s.c;
  const int64_t pad_top = s.pad_top, pad_left = s.pad_left;
  const int64_t stride_h = s.stride_h, stride_w = s.stride_w;
  const int64_t out_w = s.out_w;
  const int64_t kh = s.kh;
  const int64_t hp = (s.out_h - 1) * stride_h + kh;
  const int64_t wp = (out_w - 1) * stride_w + s.kw;
  const int64_t per_image = s.out_h * out_w;
  const int64_t row_len = s.kw * c;  // one patch row: contiguous in the padded image
  const int64_t pixels = s.n * per_image;

  parallel_for(pixels, threads, MR, [&](int64_t p0, int64_t p1) {
    std::vector<double> padded(static_cast<size_t>(hp * wp * c));
    std::vector<double> A(static_cast<size_t>(MR * taps), 0.0);
    std::vector<uint64_t> acc(static_cast<size_t>(MR * ldd));
    int64_t loaded = -1;
    auto load_image = [&](int64_t img) {
      double* dst = padded.data();
      for (int64_t py = 0; py < hp; ++py) {
        const int64_t iy = py - pad_top;
        for (int64_t px = 0; px < wp; ++px) {
          const int64_t ix = px - pad_left;
          if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
            const int64_t* src = x + ((img * h + iy) * w + ix) * c;
            for (int64_t ch = 0; ch < c; ++ch) *dst++ = static_cast<double>(src[ch]);
          } else {
            for (int64_t ch = 0; ch < c; ++ch) *dst++ = 0.0;
          }
        }
      }
      loaded = img;
    };

    for (int64_t pb = p0; pb < p1; pb += MR) {
      const int64_t rows = std::min<int64_t>(MR, p1 - pb);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t pix = pb + r;
        const int64_t img = pix / per_image;
        const int64_t oy = (pix - img * per_image) / out_w;
        const int64_t ox = pix - img * per_image - oy * out_w;
        if (img != loaded) load_image(img);
        double* dst = A.data() + r * taps;
        const double* src = padded.data() + (oy * stride_h * wp + ox * stride_w) * c;
        for (int64_t ky = 0; ky < kh; ++ky) {
          for (int64_t t = 0; t < row_len; ++t) dst[ky * row_len + t] = src[ky * wp * c + t];
        }
      }
      if (rows < MR) {  // the rows past the last pixel are never stored: keep them finite
        std::fill(A.begin() + rows * taps, A.end(), 0.0);
      }
      for (int64_t jb = 0; jb < col_blocks; ++jb) {
        for (int l = 0; l < limbs; ++l) {
          const double* panel = B.data() + (jb * limbs + l) * taps * NR;
          for (int64_t pc = 0; pc < taps; pc += kc_max) {
            const int64_t kc = std::min<int64_t>(kc_max, taps - pc);
            const bool first = l == 0 && pc == 0;
            Kernel::run(kc, A.data() + pc, taps, panel + pc * NR, l * lb,
                        first ? init.data() + jb * NR : nullptr, acc.data() + jb * NR, ldd);
          }
        }
      }
      if (ldd == f) {
        Kernel::store(out + pb * f, acc.data(), rows * f);
      } else {
        for (int64_t r = 0; r < rows; ++r) Kernel::store(out + (pb + r) * f, acc.data() + r * ldd, f);
      }
    }
    Kernel::finish();
  });
}

/// conv_direct for a SIMD Kernel: plans the limbs from the largest |x|, or falls back
/// to the scalar reference when no exact float64 plan exists (|x| too large).
template <class Kernel>
void conv_direct_simd(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads) {
  const LimbPlan plan = plan_limbs(conv_max_abs(s, x), s.kh * s.kw * s.c, 256);
  if (plan.limbs == 0) {
    conv_direct_scalar(s, x, kern, bias, out, threads);
    return;
  }
  conv_direct_driver<Kernel>(s, x, kern, bias, out, threads, plan);
}

}  // namespace cf
