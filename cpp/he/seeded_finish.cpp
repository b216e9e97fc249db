// Decrypt-finish of a seeded filter bank: rounding by w, ReLU and a 2-D sum
// pooling in one pass (seeded.hpp). Scalar code: the pass is bound by memory
// reads of the uint64 operands (bench/bench_he_seeded.py measures it against
// the memory-read roofline), so it has no per-ISA variants; the fused variant
// calls the per-ISA seeded convolution kernels for the a-term.
#include <algorithm>
#include <string>
#include <vector>

#include "he/isa_dispatch.hpp"
#include "he/parallel.hpp"
#include "he/seeded.hpp"

namespace cf {

namespace {

std::string fmt_shape(int64_t a, int64_t b) { return std::to_string(a) + "x" + std::to_string(b); }

}  // namespace

void check_finish_shape(FinishShape& s) {
  if (s.n < 0 || s.h < 1 || s.w < 1 || s.f < 1) {
    throw KernelArgumentError(
        "decrypt_finish: the operands must be n x h x w x f with n >= 0 "
        "and positive h, w, f");
  }
  if (s.tau < 2 || s.tau > 62) {
    throw KernelArgumentError("decrypt_finish: tau (plaintext bits) must be in [2, 62], got " +
                              std::to_string(s.tau));
  }
  if (s.pool_h < 1 || s.pool_w < 1 || s.pool_sh < 1 || s.pool_sw < 1) {
    throw KernelArgumentError("decrypt_finish: pool window " + fmt_shape(s.pool_h, s.pool_w) +
                              " and stride " + fmt_shape(s.pool_sh, s.pool_sw) +
                              " must be positive (use 1x1 / 1x1 for no pooling)");
  }
  if (s.pool_h > s.h || s.pool_w > s.w) {
    throw KernelArgumentError("decrypt_finish: pool window " + fmt_shape(s.pool_h, s.pool_w) +
                              " is larger than the " + fmt_shape(s.h, s.w) +
                              " feature map (VALID pooling needs window <= input)");
  }
  s.out_h = (s.h - s.pool_h) / s.pool_sh + 1;
  s.out_w = (s.w - s.pool_w) / s.pool_sw + 1;
}

void decrypt_finish_images(const FinishShape& s, const uint64_t* a, const uint64_t* b,
                           int64_t images, int64_t* out) {
  const uint64_t half = uint64_t{1} << (63 - s.tau);
  const int shift = 64 - s.tau;
  const bool relu = s.relu;
  const int64_t f = s.f;
  const int64_t row = s.w * f;
  const int64_t image = s.h * row;
  for (int64_t img = 0; img < images; ++img) {
    for (int64_t oy = 0; oy < s.out_h; ++oy) {
      for (int64_t ox = 0; ox < s.out_w; ++ox) {
        // Signed and unsigned variants of one type may alias: accumulate mod 2^64.
        uint64_t* dst =
            reinterpret_cast<uint64_t*>(out + ((img * s.out_h + oy) * s.out_w + ox) * f);
        std::fill(dst, dst + f, uint64_t{0});
        for (int64_t py = 0; py < s.pool_h; ++py) {
          const int64_t base = img * image + (oy * s.pool_sh + py) * row + ox * s.pool_sw * f;
          for (int64_t px = 0; px < s.pool_w; ++px) {
            const uint64_t* pa = a + base + px * f;
            const uint64_t* pb = b + base + px * f;
            for (int64_t k = 0; k < f; ++k) {
              // The phase w*y + noise + w/2 lies in [0, 2^63) shifted by w*y: read as
              // int64 it is signed, and the arithmetic shift rounds half up.
              int64_t y = static_cast<int64_t>(pa[k] + pb[k] + half) >> shift;
              if (relu) y = std::max<int64_t>(y, 0);
              dst[k] += static_cast<uint64_t>(y);
            }
          }
        }
      }
    }
  }
}

void decrypt_finish(const FinishShape& s, const uint64_t* a, const uint64_t* b, int64_t* out,
                    int threads) {
  if (threads < 1) threads = default_threads();
  const int64_t in_image = s.h * s.w * s.f;
  const int64_t out_image = s.out_h * s.out_w * s.f;
  parallel_for(s.n, threads, 1, [&](int64_t i0, int64_t i1) {
    decrypt_finish_images(s, a + i0 * in_image, b + i0 * in_image, i1 - i0, out + i0 * out_image);
  });
}

void seeded_conv_finish(Isa isa, const ConvShape& conv, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, const FinishShape& fin, const uint64_t* b,
                        int64_t* out, int threads) {
  if (conv.n != fin.n || conv.out_h != fin.h || conv.out_w != fin.w || conv.f != fin.f) {
    throw KernelArgumentError("seeded_conv_finish: the convolution gives " +
                              std::to_string(conv.n) + " x " + fmt_shape(conv.out_h, conv.out_w) +
                              " x " + std::to_string(conv.f) + " but the b-parts are " +
                              std::to_string(fin.n) + " x " + fmt_shape(fin.h, fin.w) + " x " +
                              std::to_string(fin.f));
  }
  check_seeded_conv(conv, x);
  require_isa_available(isa);
  if (threads < 1) threads = default_threads();
  // Images per block: the a-term of a block (about 256 KiB) stays in the L2 cache
  // between the convolution that writes it and the finish that reads it.
  const int64_t in_image = conv.h * conv.w * conv.c;
  const int64_t a_image = fin.h * fin.w * fin.f;
  const int64_t out_image = fin.out_h * fin.out_w * fin.f;
  const int64_t block = std::max<int64_t>(1, (int64_t{1} << 15) / a_image);
  parallel_for(fin.n, threads, 1, [&](int64_t i0, int64_t i1) {
    std::vector<uint64_t> a(static_cast<size_t>(std::min(block, i1 - i0) * a_image));
    for (int64_t i = i0; i < i1; i += block) {
      const int64_t count = std::min(block, i1 - i);
      ConvShape part = conv;
      part.n = count;
      seeded_conv_unchecked(isa, part, x + i * in_image, kern, bias, a.data(), 1);
      decrypt_finish_images(fin, a.data(), b + i * a_image, count, out + i * out_image);
    }
  });
}

}  // namespace cf
