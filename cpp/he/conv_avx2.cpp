// AVX2 + FMA micro-kernel for the direct convolution driver (conv_driver.hpp):
// 6 output pixels x 8 limb columns in 12 ymm float64 accumulators; finished
// words go to the output with streaming stores. Bit-identical to
// conv_direct_scalar (tested).
#include <immintrin.h>

#include <cstdint>

#include "he/conv_driver.hpp"

namespace cf {

namespace {

constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52: exact int64 for |x| < 2^51

struct ConvAvx2Kernel {
  static constexpr int MR = 6;
  static constexpr int NR = 8;
  static void run(int64_t kc, const double* A, int64_t lda, const double* B, int shift,
                  const uint64_t* init, uint64_t* dst, int64_t ldd) {
    __m256d acc[MR][2];
    for (int r = 0; r < MR; ++r) {
      acc[r][0] = _mm256_setzero_pd();
      acc[r][1] = _mm256_setzero_pd();
    }
    for (int64_t p = 0; p < kc; ++p) {
      const __m256d b0 = _mm256_loadu_pd(B);
      const __m256d b1 = _mm256_loadu_pd(B + 4);
      for (int r = 0; r < MR; ++r) {
        const __m256d a = _mm256_broadcast_sd(A + r * lda + p);
        acc[r][0] = _mm256_fmadd_pd(a, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_pd(a, b1, acc[r][1]);
      }
      B += NR;
    }
    // Every sum is an integer below 2^51 in magnitude: exact through the magic constant.
    const __m256d magic = _mm256_set1_pd(kMagic);
    const __m256i magic_bits = _mm256_castpd_si256(magic);
    const __m128i count = _mm_cvtsi32_si128(shift);
    for (int r = 0; r < MR; ++r) {
      for (int h = 0; h < 2; ++h) {
        uint64_t* d = dst + r * ldd + 4 * h;
        const __m256i bits = _mm256_castpd_si256(_mm256_add_pd(acc[r][h], magic));
        const __m256i v = _mm256_sll_epi64(_mm256_sub_epi64(bits, magic_bits), count);
        const __m256i base =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init ? init + 4 * h : d));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm256_add_epi64(base, v));
      }
    }
  }
  static void store(uint64_t* dst, const uint64_t* src, int64_t count) {
    int64_t i = 0;
    while (i < count && (reinterpret_cast<uintptr_t>(dst + i) & 31) != 0) {
      dst[i] = src[i];
      ++i;
    }
    for (; i + 4 <= count; i += 4) {
      _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    }
    for (; i < count; ++i) dst[i] = src[i];
  }
  static void finish() { _mm_sfence(); }
};

}  // namespace

void conv_direct_avx2(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads) {
  conv_direct_simd<ConvAvx2Kernel>(s, x, kern, bias, out, threads);
}

}  // namespace cf
