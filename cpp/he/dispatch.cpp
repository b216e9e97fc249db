// Argument validation and run-time selection of the kernel implementation.
#include <string>

#include "he/kernels.hpp"
#include "he/seeded.hpp"

namespace cf {

namespace {

void require_available(Isa isa) {
  if (!isa_available(isa)) {
    throw KernelArgumentError(std::string("isa '") + isa_name(isa) +
                              "' is not available on this CPU/build; use 'auto' or 'scalar'");
  }
}

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
  require_available(isa);
  switch (isa) {
#if defined(CIPHERFUSE_HAVE_AVX2)
    case Isa::Avx2:
      gemm_wide_small_avx2(W, S, C, threads);
      return;
    case Isa::Avx512:
      gemm_wide_small_avx512(W, S, C, threads);
      return;
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
    case Isa::Neon:
      gemm_wide_small_neon(W, S, C, threads);
      return;
#endif
    default:
      gemm_wide_small_scalar(W, S, C, threads);
  }
}

void keyswitch(Isa isa, const uint64_t* M, int64_t rows, int64_t n, int base_bits, int skip_low,
               const uint64_t* c, uint64_t* out, int threads) {
  (void)digit_count(base_bits);  // validates base_bits
  if (rows < 0 || n < 0) throw KernelArgumentError("keyswitch: negative dimension");
  if (threads < 1) threads = default_threads();
  require_available(isa);
  switch (isa) {
#if defined(CIPHERFUSE_HAVE_AVX2)
    case Isa::Avx2:
    case Isa::Avx512:  // bandwidth-bound: the AVX2 kernel already reaches the roofline
      keyswitch_avx2(M, rows, n, base_bits, skip_low, c, out, threads);
      return;
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
    case Isa::Neon:
      keyswitch_neon(M, rows, n, base_bits, skip_low, c, out, threads);
      return;
#endif
    default:
      keyswitch_scalar(M, rows, n, base_bits, skip_low, c, out, threads);
  }
}

void check_seeded_conv(const ConvShape& s, const int64_t* x) {
  if (s.n < 0 || s.h < 1 || s.w < 1 || s.c < 1 || s.kh < 1 || s.kw < 1 || s.f < 1 ||
      s.stride_h < 1 || s.stride_w < 1 || s.pad_top < 0 || s.pad_left < 0 || s.out_h < 1 ||
      s.out_w < 1 || s.pad_top >= s.kh || s.pad_left >= s.kw) {
    throw KernelArgumentError("seeded_conv: invalid geometry (need positive sizes and strides, "
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
  switch (isa) {
#if defined(CIPHERFUSE_HAVE_AVX2)
    case Isa::Avx2:
      seeded_conv_avx2(s, x, kern, bias, out, threads);
      return;
    case Isa::Avx512:
      seeded_conv_avx512(s, x, kern, bias, out, threads);
      return;
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
    case Isa::Neon:
      seeded_conv_neon(s, x, kern, bias, out, threads);
      return;
#endif
    default:
      seeded_conv_scalar(s, x, kern, bias, out, threads);
  }
}

void seeded_conv(Isa isa, const ConvShape& s, const int64_t* x, const uint64_t* kern,
                 const uint64_t* bias, uint64_t* out, int threads) {
  check_seeded_conv(s, x);
  if (threads < 1) threads = default_threads();
  require_available(isa);
  seeded_conv_unchecked(isa, s, x, kern, bias, out, threads);
}

}  // namespace cf
