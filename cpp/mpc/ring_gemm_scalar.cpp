// Scalar ring GEMM: plain wrapping uint64 multiply-adds in a 4 x 4 register
// tile under the shared blocked driver. The reference every SIMD path is
// tested against (and itself tested against a naive triple loop).
#include "mpc/kernels.hpp"
#include "mpc/ring_conv_driver.hpp"
#include "mpc/ring_gemm_driver.hpp"

namespace cf {
namespace mpc {

namespace {

struct ScalarKernel {
  static constexpr int MR = 4;
  static constexpr int NR = 4;
  static void run(int64_t kc, const uint64_t* Ap, const uint64_t* Bp, uint64_t* C, int64_t ldc,
                  bool accumulate) {
    uint64_t acc[MR][NR] = {};
    for (int64_t p = 0; p < kc; ++p) {
      for (int r = 0; r < MR; ++r) {
        const uint64_t a = Ap[r];
        for (int c = 0; c < NR; ++c) acc[r][c] += a * Bp[c];
      }
      Ap += MR;
      Bp += NR;
    }
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < NR; ++c)
        C[r * ldc + c] = accumulate ? C[r * ldc + c] + acc[r][c] : acc[r][c];
  }
};

}  // namespace

void ring_gemm_scalar(const uint64_t* A, const uint64_t* B, uint64_t* C, int64_t m, int64_t k,
                      int64_t n, int threads) {
  ring_gemm_driver<ScalarKernel>(A, B, C, m, k, n, threads);
}

void ring_conv_scalar(const ConvShape& s, const uint64_t* x, const uint64_t* kern, uint64_t* out,
                      int threads) {
  ring_conv_driver<ScalarKernel>(s, x, kern, out, threads);
}

}  // namespace mpc
}  // namespace cf
