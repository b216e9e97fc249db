// Scalar reference of the limb block: every convolution, patch sum and pooling
// sum in int64, straight from the definition in limb_kernel.hpp (no padding
// buffer, no float32): the SIMD paths must match it bit for bit.
#include <algorithm>
#include <limits>
#include <mutex>
#include <vector>

#include "he/limb_kernel.hpp"
#include "he/limb_sums.hpp"
#include "he/parallel.hpp"

namespace cf {

LimbTails limb_block_scalar(const LimbShape& s, const int64_t* x, const int64_t* kern,
                            const int64_t* offsets, const int64_t* bias, const LimbOut& out,
                            int threads, bool tails, LimbGate& gate) {
  const int64_t F = s.f;
  const int64_t taps = s.kh * s.kw * s.c;
  const int64_t families = tails ? 3 : 2;  // high, low, tail (T is only measured)
  LimbTails total{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                  std::numeric_limits<int64_t>::min()};
  std::mutex total_mutex;
  parallel_for(s.n, threads, 1, [&](int64_t i0, int64_t i1) {
    // Per image: R (rectified leading limbs) and max(T, 0), out_h x out_w x f.
    std::vector<int64_t> relu_high(static_cast<size_t>(s.out_h * s.out_w * F));
    std::vector<int64_t> relu_tail(relu_high.size());
    std::vector<int64_t> conv(static_cast<size_t>(3 * F));
    std::vector<int64_t> gate_sums(static_cast<size_t>(s.out_h * s.out_w));
    std::vector<int64_t> gate_scratch(
        static_cast<size_t>(limb_patch_sums_scratch(s) + s.out_h * s.out_w));
    LimbTails local{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::min()};
    for (int64_t img = i0; img < i1; ++img) {
      const int64_t* xi = x + img * s.h * s.w * s.c;
      bool nonneg = false;  // (the reference recomputes everything from x itself)
      if (!gate.admit(limb_measure_image(s, xi, gate_sums.data(), &nonneg, gate_scratch.data()))) {
        continue;
      }
      for (int64_t oy = 0; oy < s.out_h; ++oy) {
        for (int64_t ox = 0; ox < s.out_w; ++ox) {
          std::fill(conv.begin(), conv.end(), 0);
          int64_t patch_sum = 0;
          for (int64_t ky = 0; ky < s.kh; ++ky) {
            const int64_t iy = oy * s.stride_h - s.pad_top + ky;
            if (iy < 0 || iy >= s.h) continue;
            for (int64_t kx = 0; kx < s.kw; ++kx) {
              const int64_t ix = ox * s.stride_w - s.pad_left + kx;
              if (ix < 0 || ix >= s.w) continue;
              for (int64_t ch = 0; ch < s.c; ++ch) {
                const int64_t v = xi[(iy * s.w + ix) * s.c + ch];
                const int64_t t = (ky * s.kw + kx) * s.c + ch;
                patch_sum += v;
                for (int64_t j = 0; j < families; ++j)
                  for (int64_t o = 0; o < F; ++o)
                    conv[static_cast<size_t>(j * F + o)] += v * kern[(j * taps + t) * F + o];
              }
            }
          }
          const int64_t pix = oy * s.out_w + ox;
          for (int64_t o = 0; o < F; ++o) {
            const int64_t high = conv[static_cast<size_t>(o)] + offsets[0] * patch_sum + bias[o];
            const int64_t low_term = offsets[1] * patch_sum + bias[F + o];
            const bool keep =
                high > 0 || (high == 0 && conv[static_cast<size_t>(F + o)] + low_term > 0);
            const int64_t tail =
                conv[static_cast<size_t>(2 * F + o)] + offsets[2] * patch_sum + bias[2 * F + o];
            relu_high[static_cast<size_t>(pix * F + o)] = keep ? high : 0;
            relu_tail[static_cast<size_t>(pix * F + o)] = std::max<int64_t>(tail, 0);
            local.tail_min = std::min(local.tail_min, tail);
            local.tail_max = std::max(local.tail_max, tail);
          }
        }
      }
      for (int64_t py = 0; py < s.pooled_h; ++py) {
        for (int64_t px = 0; px < s.pooled_w; ++px) {
          for (int64_t o = 0; o < F; ++o) {
            int64_t high = 0, tail = 0;
            for (int64_t wy = 0; wy < s.pool_h; ++wy) {
              for (int64_t wx = 0; wx < s.pool_w; ++wx) {
                const int64_t pix = (py * s.pool_sh + wy) * s.out_w + px * s.pool_sw + wx;
                high += relu_high[static_cast<size_t>(pix * F + o)];
                tail += relu_tail[static_cast<size_t>(pix * F + o)];
              }
            }
            out.store(((img * s.pooled_h + py) * s.pooled_w + px) * F + o, high);
            local.pooled_tail_max = std::max(local.pooled_tail_max, tail);
          }
        }
      }
    }
    std::lock_guard<std::mutex> lock(total_mutex);
    total.tail_min = std::min(total.tail_min, local.tail_min);
    total.tail_max = std::max(total.tail_max, local.tail_max);
    total.pooled_tail_max = std::max(total.pooled_tail_max, local.pooled_tail_max);
  });
  return total;
}

}  // namespace cf
