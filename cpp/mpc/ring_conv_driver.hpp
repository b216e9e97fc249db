// The direct ring convolution driver shared by every ISA (kernels.hpp states what
// it computes): an implicit-im2col GEMM over the ring GEMM micro-kernels.
//
// The kernels (taps x f, taps = kh * kw * c) are packed once into NR-column
// panels per KC-deep block, exactly as ring_gemm_driver packs B. Each worker
// takes whole images: it copies one image into a zero-padded buffer (so every
// tap of every output window is inside it), and for every block of up to MC
// output pixels of that image and every KC block of taps packs the pixels'
// patches straight from the padded image into MR-row panels (a table of tap
// offsets; no patch matrix is materialised) and runs the micro-kernel against
// every column panel, accumulating over the KC blocks into the output rows
// (a pixel's f outputs are contiguous in NHWC). Edge tiles go through a local
// tile as in the GEMM driver. Exact mod 2^64 for any uint64 operands.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "he/parallel.hpp"
#include "he/seeded.hpp"  // ConvShape
#include "mpc/ring_gemm_driver.hpp"

namespace cf {
namespace mpc {

constexpr int64_t kConvMC = 96;  // pixels per block: MC x KC x 8 bytes = 96 KiB

template <class Kernel>
void ring_conv_driver(const ConvShape& s, const uint64_t* x, const uint64_t* kern, uint64_t* out,
                      int threads) {
  constexpr int64_t MR = Kernel::MR;
  constexpr int64_t NR = Kernel::NR;
  const int64_t taps = s.kh * s.kw * s.c;
  const int64_t n = s.f;
  const int64_t pixels = s.out_h * s.out_w;
  if (s.n == 0) return;
  const int64_t panels = (n + NR - 1) / NR;
  const int64_t npad = panels * NR;

  // Packed kernels, the layout of ring_gemm_driver's B: block p0 at p0 * npad,
  // panel jp of it at jp * kc * NR, element (p, c) at p * NR + c; zero past n.
  std::vector<uint64_t> Bp(static_cast<size_t>(taps * npad));
  ring_pack_b<Kernel>(kern, taps, n, Bp.data(), 0, panels);

  // The padded image covers exactly the windows of the output.
  const int64_t hp = (s.out_h - 1) * s.stride_h + s.kh;
  const int64_t wp = (s.out_w - 1) * s.stride_w + s.kw;
  // Offset of tap p = (ky, kx, ch) from its window's corner in the padded image.
  std::vector<int64_t> tap_offset(static_cast<size_t>(taps));
  for (int64_t ky = 0, p = 0; ky < s.kh; ++ky)
    for (int64_t kx = 0; kx < s.kw; ++kx)
      for (int64_t ch = 0; ch < s.c; ++ch, ++p) tap_offset[p] = (ky * wp + kx) * s.c + ch;

  const int images_threads = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(threads, s.n * pixels * taps * n / kRingMinMacsPerThread)));
  parallel_for(s.n, images_threads, 1, [&](int64_t i0, int64_t i1) {
    std::vector<uint64_t> padded(static_cast<size_t>(hp * wp * s.c));
    std::vector<uint64_t> Ap(static_cast<size_t>((kConvMC + MR - 1) / MR * MR * kRingKC));
    std::vector<int64_t> corner(static_cast<size_t>((kConvMC + MR - 1) / MR * MR));
    alignas(64) uint64_t tile[Kernel::MR * Kernel::NR];
    for (int64_t img = i0; img < i1; ++img) {
      std::fill(padded.begin(), padded.end(), uint64_t{0});
      const int64_t y0 = std::max<int64_t>(0, s.pad_top), y1 = std::min(hp, s.h + s.pad_top);
      const int64_t x0 = std::max<int64_t>(0, s.pad_left), x1 = std::min(wp, s.w + s.pad_left);
      for (int64_t py = y0; py < y1; ++py) {
        const uint64_t* src = x + ((img * s.h + py - s.pad_top) * s.w + x0 - s.pad_left) * s.c;
        std::copy(src, src + (x1 - x0) * s.c, padded.data() + (py * wp + x0) * s.c);
      }
      uint64_t* out_img = out + img * pixels * n;
      for (int64_t ic = 0; ic < pixels; ic += kConvMC) {
        const int64_t mc = std::min(kConvMC, pixels - ic);
        const int64_t rpanels = (mc + MR - 1) / MR;
        for (int64_t r = 0; r < mc; ++r) {
          const int64_t oy = (ic + r) / s.out_w, ox = (ic + r) % s.out_w;
          corner[r] = (oy * s.stride_h * wp + ox * s.stride_w) * s.c;
        }
        for (int64_t p0 = 0; p0 < taps; p0 += kRingKC) {
          const int64_t kc = std::min(kRingKC, taps - p0);
          for (int64_t ip = 0; ip < rpanels; ++ip) {
            uint64_t* dst = Ap.data() + ip * kc * MR;
            const int64_t rows = std::min(MR, mc - ip * MR);
            for (int64_t r = 0; r < rows; ++r) {
              const uint64_t* src = padded.data() + corner[ip * MR + r];
              for (int64_t p = 0; p < kc; ++p) dst[p * MR + r] = src[tap_offset[p0 + p]];
            }
            for (int64_t r = rows; r < MR; ++r)
              for (int64_t p = 0; p < kc; ++p) dst[p * MR + r] = 0;
          }
          ring_macro_block<Kernel>(Ap.data(), Bp.data() + p0 * npad, out_img + ic * n, mc, kc, n,
                                   p0 > 0, tile);
        }
      }
    }
  });
}

}  // namespace mpc
}  // namespace cf
