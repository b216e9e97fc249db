// AVX2 ring GEMM micro-kernel, 6 x 4 words. AVX2 has no 64-bit multiply, so
// each product a*b mod 2^64 is lo(a)lo(b) + ((lo(a)hi(b) + hi(a)lo(b)) << 32):
// vpmuludq gives lo*lo exactly (64-bit lanes), vpmulld of the broadcast a
// against b with its 32-bit halves swapped gives both cross terms mod 2^32 in
// the two halves of a lane, accumulated with 32-bit adds; the halves are summed
// and shifted once per tile. Bit-identical to ring_gemm_scalar (tested).
#include <immintrin.h>

#include "mpc/kernels.hpp"
#include "mpc/ring_conv_driver.hpp"
#include "mpc/ring_gemm_driver.hpp"

namespace cf {
namespace mpc {

namespace {

inline __m256i fold_cross(__m256i lo, __m256i cross) {
  // cross = L + H 2^32 (two 32-bit sums); result lo + ((L + H) << 32).
  const __m256i sum = _mm256_add_epi64(cross, _mm256_srli_epi64(cross, 32));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(sum, 32));
}

struct Avx2Kernel {
  static constexpr int MR = 6;
  static constexpr int NR = 4;
  static void run(int64_t kc, const uint64_t* Ap, const uint64_t* Bp, uint64_t* C, int64_t ldc,
                  bool accumulate) {
    __m256i lo[MR], cross[MR];
    for (int r = 0; r < MR; ++r) {
      lo[r] = _mm256_setzero_si256();
      cross[r] = _mm256_setzero_si256();
    }
    for (int64_t p = 0; p < kc; ++p) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(Bp));
      const __m256i bswap = _mm256_shuffle_epi32(b, 0xB1);
      for (int r = 0; r < MR; ++r) {
        const __m256i a = _mm256_set1_epi64x(static_cast<long long>(Ap[r]));
        lo[r] = _mm256_add_epi64(lo[r], _mm256_mul_epu32(a, b));
        cross[r] = _mm256_add_epi32(cross[r], _mm256_mullo_epi32(a, bswap));
      }
      Ap += MR;
      Bp += NR;
    }
    for (int r = 0; r < MR; ++r) {
      __m256i v = fold_cross(lo[r], cross[r]);
      auto* dst = reinterpret_cast<__m256i*>(C + r * ldc);
      if (accumulate) v = _mm256_add_epi64(v, _mm256_loadu_si256(dst));
      _mm256_storeu_si256(dst, v);
    }
  }
};

}  // namespace

void ring_gemm_avx2(const uint64_t* A, const uint64_t* B, uint64_t* C, int64_t m, int64_t k,
                    int64_t n, int threads) {
  ring_gemm_driver<Avx2Kernel>(A, B, C, m, k, n, threads);
}

void ring_conv_avx2(const ConvShape& s, const uint64_t* x, const uint64_t* kern, uint64_t* out,
                    int threads) {
  ring_conv_driver<Avx2Kernel>(s, x, kern, out, threads);
}

}  // namespace mpc
}  // namespace cf
