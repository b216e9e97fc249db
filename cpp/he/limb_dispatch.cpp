// Argument checks, the l1 pass and run-time selection of the limb-block kernel.
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "he/limb_kernel.hpp"
#include "he/parallel.hpp"

namespace cf {

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 20;  // any one extent (keeps products far from 2^63)

void require(bool ok, const std::string& what) {
  if (!ok) throw KernelArgumentError("limb_block: " + what);
}

int64_t max_abs(const int64_t* p, int64_t count) {
  int64_t m = 0;
  for (int64_t i = 0; i < count; ++i) {
    require(p[i] > -kLimbExact && p[i] < kLimbExact,
            "kernels, offsets and biases must satisfy |v| < 2^24 (got " + std::to_string(p[i]) +
                ")");
    m = std::max<int64_t>(m, std::llabs(p[i]));
  }
  return m;
}

}  // namespace

void check_limb_shape(LimbShape& s) {
  require(s.n >= 0 && s.h >= 1 && s.w >= 1 && s.c >= 1 && s.kh >= 1 && s.kw >= 1 && s.f >= 1,
          "need n >= 0 and positive image, kernel and filter sizes");
  require(s.n <= kMaxDim * 64 && s.h <= kMaxDim && s.w <= kMaxDim && s.c <= 4096 &&
              s.kh <= 64 && s.kw <= 64 && s.f <= 4096 && s.h * s.w * s.c <= kMaxDim * 16,
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

int64_t limb_patch_sums_scratch(const LimbShape& s) {
  const int64_t hp = s.h + s.pad_top + s.pad_bottom;
  const int64_t wp = s.w + s.pad_left + s.pad_right;
  return hp * wp + hp * s.out_w;
}

void limb_patch_sums(const LimbShape& s, const int64_t* img, bool absolute, int64_t* out,
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
    for (int64_t ox = 0; ox < s.out_w; ++ox) {
      const int64_t* p = plane + y * wp + ox * s.stride_w;
      int64_t sum = 0;
      for (int64_t kx = 0; kx < s.kw; ++kx) sum += p[kx];
      rows[y * s.out_w + ox] = sum;
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

LimbStats limb_block(Isa isa, LimbShape s, const int64_t* x, const int64_t* kern,
                     const int64_t* offsets, const int64_t* bias, int64_t* out, int threads) {
  check_limb_shape(s);
  if (threads < 1) threads = default_threads();
  if (!isa_available(isa)) {
    throw KernelArgumentError(std::string("isa '") + isa_name(isa) +
                              "' is not available on this CPU/build; use 'auto' or 'scalar'");
  }
  const int64_t taps = s.kh * s.kw * s.c;
  const int64_t kmax = max_abs(kern, 3 * taps * s.f);
  int64_t term_max = 0;  // max_j |o_j| l1 + max|b_j| is checked once l1 is known
  std::vector<int64_t> bmax(3), omax(3);
  for (int64_t j = 0; j < 3; ++j) {
    omax[static_cast<size_t>(j)] = max_abs(offsets + j, 1);
    bmax[static_cast<size_t>(j)] = max_abs(bias + j * s.f, s.f);
  }

  // The l1 pass: |x| < 2^31, the patch sums, which images have no negative
  // value, and l1 = the max patch sum of |x| over the block.
  LimbStats stats;
  std::mutex mutex;
  const int64_t per_image = s.h * s.w * s.c;
  const int64_t pixels = s.out_h * s.out_w;
  std::vector<int64_t> sums(static_cast<size_t>(s.n * pixels));
  std::vector<uint8_t> nonneg(static_cast<size_t>(s.n));
  parallel_for(s.n, threads, 1, [&](int64_t i0, int64_t i1) {
    std::vector<int64_t> abs_sums(static_cast<size_t>(pixels));
    std::vector<int64_t> scratch(static_cast<size_t>(limb_patch_sums_scratch(s)));
    int64_t local = 0;
    for (int64_t img = i0; img < i1; ++img) {
      const int64_t* xi = x + img * per_image;
      int64_t lo = 0, hi = 0;
      for (int64_t q = 0; q < per_image; ++q) {
        lo = std::min(lo, xi[q]);
        hi = std::max(hi, xi[q]);
      }
      if (lo <= -(int64_t{1} << 31) || hi >= (int64_t{1} << 31)) {
        local = std::numeric_limits<int64_t>::max();
        break;
      }
      int64_t* si = sums.data() + img * pixels;
      limb_patch_sums(s, xi, false, si, scratch.data());
      nonneg[static_cast<size_t>(img)] = lo >= 0;
      if (lo >= 0) {
        local = std::max(local, *std::max_element(si, si + pixels));
      } else {
        limb_patch_sums(s, xi, true, abs_sums.data(), scratch.data());
        local = std::max(local, *std::max_element(abs_sums.begin(), abs_sums.end()));
      }
    }
    std::lock_guard<std::mutex> lock(mutex);
    stats.l1 = std::max(stats.l1, local);
  });
  if (stats.l1 >= kLimbExact) return stats;  // also covers |x| >= 2^31
  for (size_t j = 0; j < 3; ++j) term_max = std::max(term_max, omax[j] * stats.l1 + bmax[j]);
  if (std::max<int64_t>(kmax, 1) * stats.l1 >= kLimbExact || term_max >= kLimbExact) return stats;

  LimbTails tails{0, 0, 0};
  if (s.n > 0) {
    switch (isa) {
#if defined(CIPHERFUSE_HAVE_AVX2)
      case Isa::Avx2:
        tails = limb_block_avx2(s, x, sums.data(), nonneg.data(), kern, offsets, bias, out,
                                  threads);
        break;
      case Isa::Avx512:
        tails = limb_block_avx512(s, x, sums.data(), nonneg.data(), kern, offsets, bias, out,
                                  threads);
        break;
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
      case Isa::Neon:
        tails = limb_block_neon(s, x, sums.data(), nonneg.data(), kern, offsets, bias, out,
                                  threads);
        break;
#endif
      default:
        tails = limb_block_scalar(s, x, sums.data(), nonneg.data(), kern, offsets, bias, out,
                                  threads);
    }
  }
  stats.computed = true;
  stats.tail_min = tails.tail_min;
  stats.tail_max = tails.tail_max;
  stats.pooled_tail_max = tails.pooled_tail_max;
  return stats;
}

}  // namespace cf
