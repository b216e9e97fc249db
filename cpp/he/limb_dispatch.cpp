// Argument checks, the l1 pass and run-time selection of the limb-block kernel
// (isa_dispatch.hpp).
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <string>

#include "he/isa_dispatch.hpp"
#include "he/limb_kernel.hpp"
#include "he/parallel.hpp"

namespace cf {

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 20;  // any one extent (keeps products far from 2^63)

void require(bool ok, const std::string& what) { require_arg(ok, "limb_block", what); }

const IsaTable<decltype(&limb_block_scalar)> kLimbBlock{
    limb_block_scalar, CF_IF_X86(limb_block_avx2), CF_IF_X86(limb_block_avx512),
    CF_IF_NEON(limb_block_neon)};

int64_t max_abs(const int64_t* p, int64_t count) {
  int64_t m = 0;
  for (int64_t i = 0; i < count; ++i) {
    require(
        p[i] > -kLimbExact && p[i] < kLimbExact,
        "kernels, offsets and biases must satisfy |v| < 2^24 (got " + std::to_string(p[i]) + ")");
    m = std::max<int64_t>(m, std::llabs(p[i]));
  }
  return m;
}

}  // namespace

void check_limb_shape(LimbShape& s) {
  require(s.n >= 0 && s.h >= 1 && s.w >= 1 && s.c >= 1 && s.kh >= 1 && s.kw >= 1 && s.f >= 1,
          "need n >= 0 and positive image, kernel and filter sizes");
  require(s.n <= kMaxDim * 64 && s.h <= kMaxDim && s.w <= kMaxDim && s.c <= 4096 && s.kh <= 64 &&
              s.kw <= 64 && s.f <= 4096 && s.h * s.w * s.c <= kMaxDim * 16,
          "sizes too large (h, w <= 2^20, c, f <= 4096, kh, kw <= 64)");
  require(s.stride_h >= 1 && s.stride_w >= 1 && s.stride_h <= 64 && s.stride_w <= 64,
          "strides must be in 1..64");
  require(s.pad_top >= 0 && s.pad_bottom >= 0 && s.pad_left >= 0 && s.pad_right >= 0 &&
              s.pad_top < s.kh && s.pad_bottom < s.kh && s.pad_left < s.kw && s.pad_right < s.kw,
          "padding must satisfy 0 <= pad < kernel size");
  const int64_t hp = s.h + s.pad_top + s.pad_bottom;
  const int64_t wp = s.w + s.pad_left + s.pad_right;
  require(hp >= s.kh && wp >= s.kw, "the padded image is smaller than the kernel");
  s.out_h = (hp - s.kh) / s.stride_h + 1;
  s.out_w = (wp - s.kw) / s.stride_w + 1;
  require(s.pool_h >= 1 && s.pool_w >= 1 && s.pool_sh >= 1 && s.pool_sw >= 1,
          "pool window and strides must be positive");
  require(s.pool_h <= s.out_h && s.pool_w <= s.out_w,
          "pool window larger than the convolution output (" + std::to_string(s.out_h) + "x" +
              std::to_string(s.out_w) + ")");
  s.pooled_h = (s.out_h - s.pool_h) / s.pool_sh + 1;
  s.pooled_w = (s.out_w - s.pool_w) / s.pool_sw + 1;
}

bool LimbGate::admit(int64_t l1) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    l1_ = std::max(l1_, l1);
  }
  if (l1 >= limit_) declined_.store(true, std::memory_order_relaxed);
  return !declined();
}

int64_t LimbGate::l1() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return l1_;
}

LimbStats limb_block(Isa isa, LimbShape s, const int64_t* x, const int64_t* kern,
                     const int64_t* offsets, const int64_t* bias, int64_t* out, int threads) {
  LimbOut words;
  words.words = out;
  return limb_block(isa, s, x, kern, offsets, bias, words, threads);
}

LimbStats limb_block(Isa isa, LimbShape s, const int64_t* x, const int64_t* kern,
                     const int64_t* offsets, const int64_t* bias, const LimbOut& out, int threads,
                     bool tails) {
  require(out.words == nullptr || out.quotients == nullptr,
          "give the int64 or the float32 output, not both");
  require(s.n == 0 || out.words != nullptr || out.quotients != nullptr, "no output given");
  require(
      out.words != nullptr || (out.scale >= 1.0f && out.scale < static_cast<float>(kLimbExact) &&
                               out.scale == static_cast<float>(static_cast<int64_t>(out.scale))),
      "the float32 output's scale must be an integer in [1, 2^24)");
  check_limb_shape(s);
  if (threads < 1) threads = default_threads();
  const auto kernel = isa_select(kLimbBlock, isa);
  // The exactness bounds as l1 < limit: max(max|k|, 1) l1 < 2^24 and, for every
  // family j, |o_j| l1 + max|b_j| < 2^24.
  const int64_t taps = s.kh * s.kw * s.c;
  const int64_t kmax = std::max<int64_t>(max_abs(kern, 3 * taps * s.f), 1);
  int64_t limit = (kLimbExact + kmax - 1) / kmax;
  for (int64_t j = 0; j < 3; ++j) {
    const int64_t o = max_abs(offsets + j, 1);
    const int64_t b = max_abs(bias + j * s.f, s.f);
    if (o > 0) limit = std::min(limit, (kLimbExact - b + o - 1) / o);
  }
  LimbGate gate(limit);
  LimbTails measured{0, 0, 0};
  if (s.n > 0) measured = kernel(s, x, kern, offsets, bias, out, threads, tails, gate);
  LimbStats stats;
  stats.l1 = gate.l1();
  stats.computed = !gate.declined() && !out.inexact.load(std::memory_order_relaxed);
  if (stats.computed && tails) {
    stats.tail_min = measured.tail_min;
    stats.tail_max = measured.tail_max;
    stats.pooled_tail_max = measured.pooled_tail_max;
  }
  return stats;
}

}  // namespace cf
