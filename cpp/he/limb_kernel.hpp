// The fused limb first block (python/cipherfuse/he/nn/limbs.py, LimbPlan.run):
// three small-integer convolutions of the same images (limb families h, l - o
// and c_1 - o), the ReLU-on-components predicate, sum pooling and the tail
// statistics, in one pass per image.
//
// Semantics (all exact integer arithmetic; the scalar reference computes it in
// int64): with s the patch sum of x and conv_j the convolution with family j,
//   H = conv_0 + o_0 s + b_0,   keep = H > 0 or (H == 0 and conv_1 > -(o_1 s + b_1)),
//   R = keep ? H : 0,           T = conv_2 + o_2 s + b_2,
// out = sum of R over each VALID pool window; tail_min / tail_max = min / max of T;
// pooled_tail_max = max over pool windows of the sum of max(T, 0).
//
// The SIMD paths convolve in float32, exact because every partial sum is an
// integer of magnitude <= l1 * max|k| < 2^24 (l1: the largest patch sum of |x|).
// That condition, and |o_j| l1 + max|b_j| < 2^24 (so every per-pixel value fits
// int32), are checked by limb_block on every call: when one fails it declines
// (LimbStats::computed = false, out's contents unspecified) and the caller uses
// another path. Both conditions are l1 < l1_limit for a limit known from the
// kernels alone, so each image is checked (and then computed) in one pass.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "he/kernels.hpp"

namespace cf {

/// Geometry of one limb block. Output pixel (oy, ox) reads input pixel
/// (oy*stride_h - pad_top + ky, ox*stride_w - pad_left + kx); taps outside the
/// image read zero. Pooling windows are VALID over the out_h x out_w output.
struct LimbShape {
  int64_t n, h, w, c;  // images: n x h x w x c (int64)
  int64_t kh, kw, f;   // each family: kh x kw x c x f
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int64_t pool_h, pool_w, pool_sh, pool_sw;  // 1, 1, 1, 1: no pooling
  int64_t out_h, out_w;                      // filled by check_limb_shape
  int64_t pooled_h, pooled_w;                // filled by check_limb_shape
};

/// What limb_block reports besides the pooled features.
struct LimbStats {
  bool computed = false;        // false: a bound failed (see above), out unspecified
  int64_t l1 = 0;               // max patch sum of |x| (INT64_MAX if some |x| >= 2^31)
  int64_t tail_min = 0;         // min T (0 when n == 0)
  int64_t tail_max = 0;         // max T (0 when n == 0)
  int64_t pooled_tail_max = 0;  // max pooled max(T, 0) (0 when n == 0)
};

/// The bound the float32 paths need, also applied to the scalar path so that
/// every ISA declines on the same inputs.
constexpr int64_t kLimbExact = int64_t{1} << 24;

/// Where the pooled features go: int64 words, or float32 quotients value / scale
/// (the prefix output already descaled). A quotient is rounded once and equals
/// float64 division rounded to float32, because value and scale are float32
/// numbers: a value with |value| >= 2^24 is not, so it sets `inexact` and
/// limb_block declines (never a silently rounded feature).
struct LimbOut {
  int64_t* words = nullptr;    // int64 output, or
  float* quotients = nullptr;  // float32 output of value / scale
  float scale = 1.0f;          // an integer in [1, 2^24)
  mutable std::atomic<bool> inexact{false};

  void store(int64_t index, int64_t value) const {
    if (words != nullptr) {
      words[index] = value;
      return;
    }
    if (value <= -kLimbExact || value >= kLimbExact) inexact.store(true, std::memory_order_relaxed);
    quotients[index] = static_cast<float>(value) / scale;
  }
};

/// Fills out_h, out_w, pooled_h, pooled_w and checks every field (KernelArgumentError).
void check_limb_shape(LimbShape& s);

/// The fused block. x: n x h x w x c int64; kern: 3 x kh x kw x c x f int64
/// (|k| < 2^24, checked); offsets: 3 int64 and bias: 3 x f int64 (|v| < 2^24,
/// checked); out: n x pooled_h x pooled_w x f int64. All C-contiguous.
LimbStats limb_block(Isa isa, LimbShape s, const int64_t* x, const int64_t* kern,
                     const int64_t* offsets, const int64_t* bias, int64_t* out, int threads);

/// The same block writing through `out` (int64 words or float32 quotients).
/// tails = false skips the tail family T and its statistics (LimbStats' tail
/// fields are then 0, not measured): for a caller that bounds T a priori. The
/// features are the same either way (T never enters them).
LimbStats limb_block(Isa isa, LimbShape s, const int64_t* x, const int64_t* kern,
                     const int64_t* offsets, const int64_t* bias, const LimbOut& out, int threads,
                     bool tails = true);

/// tail_min, tail_max, pooled_tail_max of the computed images.
struct LimbTails {
  int64_t tail_min, tail_max, pooled_tail_max;
};

/// The per-image admission shared by every ISA, so that all decline on the same
/// inputs: each image's l1 (limb_sums.hpp, limb_measure_image) goes through
/// admit(), which returns true iff no image so far broke l1 < l1_limit. Bodies
/// keep measuring (not computing) images after a refusal, for the reported l1.
class LimbGate {
 public:
  explicit LimbGate(int64_t l1_limit) : limit_(l1_limit) {}
  bool admit(int64_t l1);
  bool declined() const { return declined_.load(std::memory_order_relaxed); }
  int64_t l1() const;

 private:
  int64_t limit_;
  std::atomic<bool> declined_{false};
  mutable std::mutex mutex_;
  int64_t l1_ = 0;
};

/// Per-ISA bodies, called by limb_block after the argument checks with the
/// geometry filled in: every image goes through gate.admit(its l1) first, and is
/// computed only if admitted. They return tail_min, tail_max and pooled_tail_max
/// (unspecified when tails = false: the tail family is then not convolved).
LimbTails limb_block_scalar(const LimbShape& s, const int64_t* x, const int64_t* kern,
                            const int64_t* offsets, const int64_t* bias, const LimbOut& out,
                            int threads, bool tails, LimbGate& gate);
#if defined(CIPHERFUSE_HAVE_AVX2)
LimbTails limb_block_avx2(const LimbShape& s, const int64_t* x, const int64_t* kern,
                          const int64_t* offsets, const int64_t* bias, const LimbOut& out,
                          int threads, bool tails, LimbGate& gate);
LimbTails limb_block_avx512(const LimbShape& s, const int64_t* x, const int64_t* kern,
                            const int64_t* offsets, const int64_t* bias, const LimbOut& out,
                            int threads, bool tails, LimbGate& gate);
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
LimbTails limb_block_neon(const LimbShape& s, const int64_t* x, const int64_t* kern,
                          const int64_t* offsets, const int64_t* bias, const LimbOut& out,
                          int threads, bool tails, LimbGate& gate);
#endif

}  // namespace cf
