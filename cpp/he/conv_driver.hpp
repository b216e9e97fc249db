// The implicit-im2col direct convolution driver shared by the SIMD paths
// (AVX2, AVX-512, NEON); conv.hpp states what it computes.
//
// Every kernel word is cut into `limbs` limbs (gemm_plan.hpp) and packed once
// as float64 panels. Each thread takes a contiguous range of output pixels,
// converts the image it is in once to a zero-padded float64 copy (so that
// every tap is inside it), and for every block of MR pixels copies their
// patches (kh rows of kw * c values) into an MR x K float64 block: no patch
// matrix is materialised. The ISA's micro-kernel multiplies that block by the
// limb panels over k-blocks short enough that every partial sum is an exact
// integer below 2^51, converts the sums to int64 and recombines the limbs with
// wrapping uint64 shifts and adds. A Kernel provides MR and
//
// * the fused path (two 32-bit limbs, all taps in one k-block: e.g. |x| < 2^14
//   with up to 32 taps, |x| <= 1000 with up to 256): NW and
//     static void run_pair(int64_t taps, const double* A, int64_t lda, const double* B,
//                          const uint64_t* bias, uint64_t* dst, int64_t ldd, int64_t rows,
//                          int64_t cols)
//   which, for r < rows and c < cols, with lo / hi = sum_p A[r*lda + p] * B[(2p + 0 / 1)*NW + c]
//   (exact), writes dst[r*ldd + c] = bias[c] + lo + (hi << 32): the finished
//   words, straight into the NHWC output;
// * the general path (3-4 limbs or several k-blocks): NR and
//     static void run(int64_t kc, const double* A, int64_t lda, const double* B, int shift,
//                     const uint64_t* init, uint64_t* dst, int64_t ldd)
//   doing, for r < MR and c < NR, with sum = sum_p A[r*lda + p] * B[p*NR + c] (exact):
//     dst[r*ldd + c] = (init ? init[c] : dst[r*ldd + c]) + (uint64(int64(sum)) << shift)
//   into an MR x f' buffer (f' = f rounded up to NR) that is then copied to the output.
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

/// Copies the patches of MR consecutive output pixels into an MR x lda block of T
/// (float64 for the FMA kernels, int16 for the AVX-512 VNNI kernel); columns
/// taps..lda of every row are zero.
template <int MR, typename T = double>
class PatchPacker {
 public:
  PatchPacker(const ConvShape& s, const int64_t* x, int64_t lda)
      : s_(s),
        x_(x),
        lda_(lda),
        hp_((s.out_h - 1) * s.stride_h + s.kh),
        wp_((s.out_w - 1) * s.stride_w + s.kw),
        padded_(static_cast<size_t>(hp_ * wp_ * s.c)) {}

  /// A[r * lda + p] = tap p of pixel pb + r for r < rows; rows past `rows` are zero.
  void pack(int64_t pb, int64_t rows, T* A) {
    const int64_t per_image = s_.out_h * s_.out_w;
    const int64_t row_len = s_.kw * s_.c;  // one patch row: contiguous in the padded image
    const int64_t taps = s_.kh * row_len;
    if (pb != next_) {  // not where the last block ended: locate pixel pb (blocks run in order)
      img_ = pb / per_image;
      oy_ = (pb - img_ * per_image) / s_.out_w;
      ox_ = pb - img_ * per_image - oy_ * s_.out_w;
    }
    next_ = pb + rows;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t img = img_, oy = oy_, ox = ox_;
      if (++ox_ == s_.out_w) {  // step to the next pixel without dividing
        ox_ = 0;
        if (++oy_ == s_.out_h) {
          oy_ = 0;
          ++img_;
        }
      }
      if (img != loaded_) load_image(img);
      T* dst = A + r * lda_;
      const int64_t* src = padded_.data() + (oy * s_.stride_h * wp_ + ox * s_.stride_w) * s_.c;
      // A converting loop (int64 -> T): short rows are not turned into memmove calls.
      for (int64_t ky = 0; ky < s_.kh; ++ky) {
        for (int64_t t = 0; t < row_len; ++t) {
          dst[ky * row_len + t] = static_cast<T>(src[ky * wp_ * s_.c + t]);
        }
      }
      std::fill(dst + taps, dst + lda_, T{0});
    }
    // Rows past the last pixel are computed but never stored: keep them finite.
    std::fill(A + rows * lda_, A + MR * lda_, T{0});
  }

 private:
  // The zero-padded image covers exactly the windows of the output.
  void load_image(int64_t img) {
    const int64_t h = s_.h, w = s_.w, c = s_.c;
    std::fill(padded_.begin(), padded_.end(), int64_t{0});
    const int64_t y0 = std::max<int64_t>(0, s_.pad_top), y1 = std::min(hp_, h + s_.pad_top);
    const int64_t x0 = std::max<int64_t>(0, s_.pad_left), x1 = std::min(wp_, w + s_.pad_left);
    for (int64_t py = y0; py < y1; ++py) {
      const int64_t* src = x_ + ((img * h + py - s_.pad_top) * w + x0 - s_.pad_left) * c;
      std::copy(src, src + (x1 - x0) * c, padded_.data() + (py * wp_ + x0) * c);
    }
    loaded_ = img;
  }

  const ConvShape& s_;
  const int64_t* x_;
  int64_t lda_, hp_, wp_;
  std::vector<int64_t> padded_;
  int64_t loaded_ = -1;
  int64_t next_ = -1, img_ = 0, oy_ = 0, ox_ = 0;  // the pixel after the last block packed
};

/// The fused path: two 32-bit limbs, all taps in one k-block (plan.limbs == 2, plan.kc >= taps).
template <class Kernel>
void conv_direct_pair(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads) {
  constexpr int MR = Kernel::MR;
  constexpr int NW = Kernel::NW;
  const int64_t taps = s.kh * s.kw * s.c;
  const int64_t f = s.f;
  const int64_t col_blocks = (f + NW - 1) / NW;
  // B[((jb * taps + p) * 2 + l) * NW + c] = limb l of kern[p, jb * NW + c] (0 past f).
  std::vector<double> B(static_cast<size_t>(col_blocks * taps * 2 * NW), 0.0);
  for (int64_t jb = 0; jb < col_blocks; ++jb) {
    const int64_t cols = std::min<int64_t>(NW, f - jb * NW);
    for (int64_t p = 0; p < taps; ++p) {
      double* dst = B.data() + (jb * taps + p) * 2 * NW;
      for (int64_t c = 0; c < cols; ++c) {
        const uint64_t word = kern[p * f + jb * NW + c];
        dst[c] = limb_to_double(word & 0xffffffffULL);
        dst[NW + c] = limb_to_double(word >> 32);
      }
    }
  }
  std::vector<uint64_t> biasp(static_cast<size_t>(col_blocks * NW), 0);
  if (bias) std::copy(bias, bias + f, biasp.begin());
  parallel_for(s.n * s.out_h * s.out_w, threads, MR, [&](int64_t p0, int64_t p1) {
    PatchPacker<MR> packer(s, x, taps);
    std::vector<double> A(static_cast<size_t>(MR * taps));
    for (int64_t pb = p0; pb < p1; pb += MR) {
      const int64_t rows = std::min<int64_t>(MR, p1 - pb);
      packer.pack(pb, rows, A.data());
      for (int64_t jb = 0; jb < col_blocks; ++jb) {
        Kernel::run_pair(taps, A.data(), taps, B.data() + jb * taps * 2 * NW,
                         biasp.data() + jb * NW, out + pb * f + jb * NW, f, rows,
                         std::min<int64_t>(NW, f - jb * NW));
      }
    }
  });
}

/// The general path: any limb plan, k-blocks, limbs recombined in an MR x f' buffer.
template <class Kernel>
void conv_direct_general(const ConvShape& s, const int64_t* x, const uint64_t* kern,
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

  parallel_for(s.n * s.out_h * s.out_w, threads, MR, [&](int64_t p0, int64_t p1) {
    PatchPacker<MR> packer(s, x, taps);
    std::vector<double> A(static_cast<size_t>(MR * taps));
    std::vector<uint64_t> acc(static_cast<size_t>(MR * ldd));
    for (int64_t pb = p0; pb < p1; pb += MR) {
      const int64_t rows = std::min<int64_t>(MR, p1 - pb);
      packer.pack(pb, rows, A.data());
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
      for (int64_t r = 0; r < rows; ++r) {
        std::copy(acc.data() + r * ldd, acc.data() + r * ldd + f, out + (pb + r) * f);
      }
    }
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
  if (plan.limbs == 2 && plan.kc >= s.kh * s.kw * s.c) {
    conv_direct_pair<Kernel>(s, x, kern, bias, out, threads);
  } else {
    conv_direct_general<Kernel>(s, x, kern, bias, out, threads, plan);
  }
}

}  // namespace cf
