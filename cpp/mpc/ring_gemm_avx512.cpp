// AVX-512 ring GEMM micro-kernels, both bit-identical to ring_gemm_scalar:
//  - mullo (the default): 8 x 16 words, vpmullq (AVX-512DQ) for a*b mod 2^64,
//    the broadcast of a fused into the multiply;
//  - split: 6 x 16 words, the AVX2 scheme in zmm registers (vpmuludq for
//    lo*lo, vpmulld against the half-swapped b for both cross terms).
// Which one wins depends on the core's vpmullq throughput (measured in
// bench/bench_mpc_kernels.py; docs/mpc-kernels.md).
#include <immintrin.h>

#include "mpc/kernels.hpp"
#include "mpc/ring_conv_driver.hpp"
#include "mpc/ring_gemm_driver.hpp"

namespace cf {
namespace mpc {

namespace {

inline void store_tile_row(uint64_t* dst, __m512i v, bool accumulate) {
  if (accumulate) v = _mm512_add_epi64(v, _mm512_loadu_si512(dst));
  _mm512_storeu_si512(dst, v);
}

struct MulloKernel {
  static constexpr int MR = 8;
  static constexpr int NR = 16;
  static void run(int64_t kc, const uint64_t* Ap, const uint64_t* Bp, uint64_t* C, int64_t ldc,
                  bool accumulate) {
    __m512i acc[MR][2];
    for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (int64_t p = 0; p < kc; ++p) {
      const __m512i b0 = _mm512_loadu_si512(Bp);
      const __m512i b1 = _mm512_loadu_si512(Bp + 8);
      for (int r = 0; r < MR; ++r) {
        const __m512i a = _mm512_set1_epi64(static_cast<long long>(Ap[r]));
        acc[r][0] = _mm512_add_epi64(acc[r][0], _mm512_mullo_epi64(a, b0));
        acc[r][1] = _mm512_add_epi64(acc[r][1], _mm512_mullo_epi64(a, b1));
      }
      Ap += MR;
      Bp += NR;
    }
    for (int r = 0; r < MR; ++r) {
      store_tile_row(C + r * ldc, acc[r][0], accumulate);
      store_tile_row(C + r * ldc + 8, acc[r][1], accumulate);
    }
  }
};

inline __m512i fold_cross(__m512i lo, __m512i cross) {
  return _mm512_add_epi64(
      lo, _mm512_slli_epi64(_mm512_add_epi64(cross, _mm512_srli_epi64(cross, 32)), 32));
}

struct SplitKernel {
  static constexpr int MR = 6;
  static constexpr int NR = 16;
  static void run(int64_t kc, const uint64_t* Ap, const uint64_t* Bp, uint64_t* C, int64_t ldc,
                  bool accumulate) {
    __m512i lo[MR][2], cross[MR][2];
    for (int r = 0; r < MR; ++r)
      lo[r][0] = lo[r][1] = cross[r][0] = cross[r][1] = _mm512_setzero_si512();
    for (int64_t p = 0; p < kc; ++p) {
      const __m512i b0 = _mm512_loadu_si512(Bp);
      const __m512i b1 = _mm512_loadu_si512(Bp + 8);
      const __m512i s0 = _mm512_shuffle_epi32(b0, _MM_PERM_CDAB);
      const __m512i s1 = _mm512_shuffle_epi32(b1, _MM_PERM_CDAB);
      for (int r = 0; r < MR; ++r) {
        const __m512i a = _mm512_set1_epi64(static_cast<long long>(Ap[r]));
        lo[r][0] = _mm512_add_epi64(lo[r][0], _mm512_mul_epu32(a, b0));
        lo[r][1] = _mm512_add_epi64(lo[r][1], _mm512_mul_epu32(a, b1));
        cross[r][0] = _mm512_add_epi32(cross[r][0], _mm512_mullo_epi32(a, s0));
        cross[r][1] = _mm512_add_epi32(cross[r][1], _mm512_mullo_epi32(a, s1));
      }
      Ap += MR;
      Bp += NR;
    }
    for (int r = 0; r < MR; ++r) {
      store_tile_row(C + r * ldc, fold_cross(lo[r][0], cross[r][0]), accumulate);
      store_tile_row(C + r * ldc + 8, fold_cross(lo[r][1], cross[r][1]), accumulate);
    }
  }
};

}  // namespace

void ring_gemm_avx512(const uint64_t* A, const uint64_t* B, uint64_t* C, int64_t m, int64_t k,
                      int64_t n, int threads) {
  ring_gemm_driver<MulloKernel>(A, B, C, m, k, n, threads);
}

void ring_gemm_avx512_split(const uint64_t* A, const uint64_t* B, uint64_t* C, int64_t m, int64_t k,
                            int64_t n, int threads) {
  ring_gemm_driver<SplitKernel>(A, B, C, m, k, n, threads);
}

void ring_conv_avx512(const ConvShape& s, const uint64_t* x, const uint64_t* kern, uint64_t* out,
                      int threads) {
  ring_conv_driver<MulloKernel>(s, x, kern, out, threads);
}

}  // namespace mpc
}  // namespace cf
