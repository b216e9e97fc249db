// Argument validation and run-time selection of the kernel implementation.
#include <string>

#include "he/kernels.hpp"

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

}  // namespace cf
