// Argument validation and run-time selection of the kernel implementation
// (one IsaTable per kernel, isa_dispatch.hpp).
#include <string>

#include "he/isa_dispatch.hpp"
#include "he/kernels.hpp"
#include "he/seeded.hpp"

namespace cf {

namespace {

const IsaTable<decltype(&gemm_wide_small_scalar)> kGemmWideSmall{
    gemm_wide_small_scalar, CF_IF_X86(gemm_wide_small_avx2), CF_IF_X86(gemm_wide_small_avx512),
    CF_IF_NEON(gemm_wide_small_neon)};

// Key switching is bandwidth-bound: the AVX2 kernel already reaches the roofline, so
// AVX-512 runs it too.
const IsaTable<decltype(&keyswitch_scalar)> kKeyswitch{keyswitch_scalar, CF_IF_X86(keyswitch_avx2),
                                                       CF_IF_X86(keyswitch_avx2),
                                                       CF_IF_NEON(keyswitch_neon)};

const IsaTable<decltype(&seeded_conv_scalar)> kSeededConv{
    seeded_conv_scalar, CF_IF_X86(seeded_conv_avx2), CF_IF_X86(seeded_conv_avx512),
    CF_IF_NEON(seeded_conv_neon)};

}  // namespace

void gemm_wide_small(Isa isa, View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                     int threads) {
  if (W.cols != S.rows || C.rows != W.rows || C.cols != S.cols) {
    throw KernelArgumentError("gemm: shape mismatch (" + std::to_string(W.rows) + "x" +
                              std::to_string(W.cols) + ") * (" + std::to_string(S.rows) + "x" +
                              std::to_string(S.cols) + ") -> (" + std::to_string(C.rows) + "x" +
                              std::to_string(C.cols) + ")");
  }
  if (threads < 1) threads = default_threads();
  isa_select(kGemmWideSmall, isa)(W, S, C, threads);
}

void keyswitch(Isa isa, const uint64_t* M, int64_t rows, int64_t n, int base_bits, int skip_low,
               const uint64_t* c, uint64_t* out, int threads) {
  (void)digit_count(base_bits);  // validates base_bits
  if (rows < 0 || n < 0) throw KernelArgumentError("keyswitch: negative dimension");
  if (threads < 1) threads = default_threads();
  isa_select(kKeyswitch, isa)(M, rows, n, base_bits, skip_low, c, out, threads);
}

void check_seeded_conv(const ConvShape& s, const int64_t* x) {
  if (s.n < 0 || s.h < 1 || s.w < 1 || s.c < 1 || s.kh < 1 || s.kw < 1 || s.f < 1 ||
      s.stride_h < 1 || s.stride_w < 1 || s.pad_top < 0 || s.pad_left < 0 || s.out_h < 1 ||
      s.out_w < 1 || s.pad_top >= s.kh || s.pad_left >= s.kw) {
    throw KernelArgumentError(
        "seeded_conv: invalid geometry (need positive sizes and strides, "
        "0 <= padding < kernel size)");
  }
  // Every output window must start inside the padded image.
  if ((s.out_h - 1) * s.stride_h - s.pad_top >= s.h ||
      (s.out_w - 1) * s.stride_w - s.pad_left >= s.w) {
    throw KernelArgumentError("seeded_conv: output size too large for the image and padding");
  }
  const int64_t count = s.n * s.h * s.w * s.c;
  for (int64_t i = 0; i < count; ++i) {
    if (x[i] < -(int64_t{1} << 31) + 1 || x[i] > (int64_t{1} << 31) - 1) {
      throw KernelArgumentError("seeded_conv: inputs must satisfy |x| < 2^31");
    }
  }
}

void seeded_conv_unchecked(Isa isa, const ConvShape& s, const int64_t* x, const uint64_t* kern,
                           const uint64_t* bias, uint64_t* out, int threads) {
  isa_entry(kSeededConv, isa)(s, x, kern, bias, out, threads);
}

void seeded_conv(Isa isa, const ConvShape& s, const int64_t* x, const uint64_t* kern,
                 const uint64_t* bias, uint64_t* out, int threads) {
  check_seeded_conv(s, x);
  if (threads < 1) threads = default_threads();
  require_isa_available(isa);
  seeded_conv_unchecked(isa, s, x, kern, bias, out, threads);
}

}  // namespace cf
