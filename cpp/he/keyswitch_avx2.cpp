// AVX2 key switch: out = M * decompose(c) mod 2^64, streaming M once.
//
// Digits are < 2^16, so each 64-bit lane product M*d is lo32(M)*d +
// (hi32(M)*d << 32) with two _mm256_mul_epu32; base-2 digits are 0/1 and turn
// the product into an AND with a precomputed all-ones/zero mask. Four rows are
// processed together so every digit load is shared by four streams of M.
#include <immintrin.h>

#include <vector>

#include "he/kernels.hpp"
#include "he/parallel.hpp"

namespace cf {

namespace {

inline __m256i mul_digit(__m256i m, __m256i d) {
  const __m256i lo = _mm256_mul_epu32(m, d);
  const __m256i hi = _mm256_mul_epu32(_mm256_srli_epi64(m, 32), d);
  return _mm256_add_epi64(lo, _mm256_slli_epi64(hi, 32));
}

inline uint64_t hsum(__m256i v) {
  alignas(32) uint64_t t[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
  return t[0] + t[1] + t[2] + t[3];
}

template <bool kBinary>
void rows_kernel(const uint64_t* M, int64_t cols, const uint64_t* d, int64_t r0, int64_t r1,
                 uint64_t* out) {
  const int64_t vec_end = cols - cols % 4;
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const uint64_t* m0 = M + (r + 0) * cols;
    const uint64_t* m1 = M + (r + 1) * cols;
    const uint64_t* m2 = M + (r + 2) * cols;
    const uint64_t* m3 = M + (r + 3) * cols;
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    __m256i a2 = _mm256_setzero_si256(), a3 = _mm256_setzero_si256();
    for (int64_t j = 0; j < vec_end; j += 4) {
      const __m256i dv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + j));
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m0 + j));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m1 + j));
      const __m256i v2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m2 + j));
      const __m256i v3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m3 + j));
      if constexpr (kBinary) {
        a0 = _mm256_add_epi64(a0, _mm256_and_si256(v0, dv));
        a1 = _mm256_add_epi64(a1, _mm256_and_si256(v1, dv));
        a2 = _mm256_add_epi64(a2, _mm256_and_si256(v2, dv));
        a3 = _mm256_add_epi64(a3, _mm256_and_si256(v3, dv));
      } else {
        a0 = _mm256_add_epi64(a0, mul_digit(v0, dv));
        a1 = _mm256_add_epi64(a1, mul_digit(v1, dv));
        a2 = _mm256_add_epi64(a2, mul_digit(v2, dv));
        a3 = _mm256_add_epi64(a3, mul_digit(v3, dv));
      }
    }
    uint64_t s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (int64_t j = vec_end; j < cols; ++j) {
      const uint64_t dj = d[j];
      if constexpr (kBinary) {
        s0 += m0[j] & dj;
        s1 += m1[j] & dj;
        s2 += m2[j] & dj;
        s3 += m3[j] & dj;
      } else {
        s0 += m0[j] * dj;
        s1 += m1[j] * dj;
        s2 += m2[j] * dj;
        s3 += m3[j] * dj;
      }
    }
    out[r] = s0;
    out[r + 1] = s1;
    out[r + 2] = s2;
    out[r + 3] = s3;
  }
  for (; r < r1; ++r) {
    const uint64_t* m0 = M + r * cols;
    __m256i a0 = _mm256_setzero_si256();
    for (int64_t j = 0; j < vec_end; j += 4) {
      const __m256i dv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + j));
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m0 + j));
      if constexpr (kBinary) {
        a0 = _mm256_add_epi64(a0, _mm256_and_si256(v0, dv));
      } else {
        a0 = _mm256_add_epi64(a0, mul_digit(v0, dv));
      }
    }
    uint64_t s0 = hsum(a0);
    for (int64_t j = vec_end; j < cols; ++j) {
      if constexpr (kBinary) {
        s0 += m0[j] & d[j];
      } else {
        s0 += m0[j] * d[j];
      }
    }
    out[r] = s0;
  }
}

}  // namespace

void keyswitch_avx2(const uint64_t* M, int64_t rows, int64_t n, int base_bits,
                    const uint64_t* c, uint64_t* out, int threads) {
  const int64_t cols = n * digit_count(base_bits);
  std::vector<uint64_t> digits(static_cast<size_t>(cols));
  decompose(c, n, base_bits, digits.data());
  if (base_bits == 1) {
    for (auto& x : digits) x = uint64_t{0} - x;  // 0 -> 0, 1 -> all ones
    parallel_for(rows, threads, 4, [&](int64_t r0, int64_t r1) {
      rows_kernel<true>(M, cols, digits.data(), r0, r1, out);
    });
  } else {
    parallel_for(rows, threads, 4, [&](int64_t r0, int64_t r1) {
      rows_kernel<false>(M, cols, digits.data(), r0, r1, out);
    });
  }
}

}  // namespace cf
