// AVX2 replicated-sharing local steps, 4 words per vector; the 64-bit products
// are built from 32-bit ones (lo*lo by vpmuludq, both cross terms by vpmulld
// against the half-swapped operand). Tails run the scalar reference.
#include <immintrin.h>

#include "mpc/kernels.hpp"

namespace cf {
namespace mpc {

namespace {

inline __m256i load(const uint64_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// a * b mod 2^64 in each 64-bit lane.
inline __m256i mul64(__m256i a, __m256i b) {
  const __m256i lo = _mm256_mul_epu32(a, b);
  const __m256i cross = _mm256_mullo_epi32(a, _mm256_shuffle_epi32(b, 0xB1));
  const __m256i sum = _mm256_add_epi64(cross, _mm256_srli_epi64(cross, 32));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(sum, 32));
}

}  // namespace

void rss_mul_avx2(const uint64_t* x0, const uint64_t* x1, const uint64_t* y0, const uint64_t* y1,
                  const uint64_t* mask, uint64_t* z, int64_t count) {
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) {
    const __m256i b0 = load(y0 + i);
    const __m256i v =
        _mm256_add_epi64(_mm256_add_epi64(mul64(load(x0 + i), _mm256_add_epi64(b0, load(y1 + i))),
                                          mul64(load(x1 + i), b0)),
                         load(mask + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(z + i), v);
  }
  rss_mul_scalar(x0 + i, x1 + i, y0 + i, y1 + i, mask + i, z + i, count - i);
}

void rss_and_avx2(const uint64_t* x0, const uint64_t* x1, const uint64_t* y0, const uint64_t* y1,
                  const uint64_t* mask, uint64_t* z, int64_t count) {
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) {
    const __m256i b0 = load(y0 + i);
    const __m256i v = _mm256_xor_si256(
        _mm256_xor_si256(_mm256_and_si256(load(x0 + i), _mm256_xor_si256(b0, load(y1 + i))),
                         _mm256_and_si256(load(x1 + i), b0)),
        load(mask + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(z + i), v);
  }
  rss_and_scalar(x0 + i, x1 + i, y0 + i, y1 + i, mask + i, z + i, count - i);
}

}  // namespace mpc
}  // namespace cf
