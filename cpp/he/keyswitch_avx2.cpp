// AVX2 key switch kernels for the shared driver (keyswitch_driver.hpp).
//
// Digits are < 2^16, so each 64-bit lane product M*d is lo32(M)*d +
// (hi32(M)*d << 32) with two _mm256_mul_epu32. Base-2 digits are 0/1: the
// driver's prepare() turns them into all-zero/all-one masks and the product
// becomes an AND. Four rows share every digit load.
#include <immintrin.h>

#include "he/keyswitch_driver.hpp"

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

inline __m256i load(const uint64_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

template <bool kMask>
struct Avx2Dot : DigitTerm<kMask> {
  using DigitTerm<kMask>::scalar_term;
  static __m256i term(__m256i m, __m256i d) {
    if constexpr (kMask) {
      return _mm256_and_si256(m, d);
    } else {
      return mul_digit(m, d);
    }
  }
  static void dot4(const uint64_t* const m[4], const uint64_t* d, int64_t len, uint64_t acc[4]) {
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    __m256i a2 = _mm256_setzero_si256(), a3 = _mm256_setzero_si256();
    const int64_t end = len - len % 4;
    for (int64_t j = 0; j < end; j += 4) {
      const __m256i dv = load(d + j);
      a0 = _mm256_add_epi64(a0, term(load(m[0] + j), dv));
      a1 = _mm256_add_epi64(a1, term(load(m[1] + j), dv));
      a2 = _mm256_add_epi64(a2, term(load(m[2] + j), dv));
      a3 = _mm256_add_epi64(a3, term(load(m[3] + j), dv));
    }
    uint64_t s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (int64_t j = end; j < len; ++j) {
      s0 += scalar_term(m[0][j], d[j]);
      s1 += scalar_term(m[1][j], d[j]);
      s2 += scalar_term(m[2][j], d[j]);
      s3 += scalar_term(m[3][j], d[j]);
    }
    acc[0] += s0;
    acc[1] += s1;
    acc[2] += s2;
    acc[3] += s3;
  }
  static void dot2(const uint64_t* const m[2], const uint64_t* d, int64_t len, uint64_t acc[2]) {
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    __m256i b0 = _mm256_setzero_si256(), b1 = _mm256_setzero_si256();
    const int64_t end = len - len % 8;
    for (int64_t j = 0; j < end; j += 8) {
      const __m256i d0 = load(d + j);
      const __m256i d1 = load(d + j + 4);
      a0 = _mm256_add_epi64(a0, term(load(m[0] + j), d0));
      a1 = _mm256_add_epi64(a1, term(load(m[0] + j + 4), d1));
      b0 = _mm256_add_epi64(b0, term(load(m[1] + j), d0));
      b1 = _mm256_add_epi64(b1, term(load(m[1] + j + 4), d1));
    }
    uint64_t s0 = hsum(_mm256_add_epi64(a0, a1)), s1 = hsum(_mm256_add_epi64(b0, b1));
    for (int64_t j = end; j < len; ++j) {
      s0 += scalar_term(m[0][j], d[j]);
      s1 += scalar_term(m[1][j], d[j]);
    }
    acc[0] += s0;
    acc[1] += s1;
  }
  // Digits of each word with variable shifts, four digits per instruction.
  static void decompose(const uint64_t* c, int64_t n, int base_bits, uint64_t* out) {
    const int l = digit_count(base_bits);
    if (l % 4 != 0) {
      cf::decompose(c, n, base_bits, out);
      return;
    }
    const __m256i mask = _mm256_set1_epi64x(static_cast<long long>((uint64_t{1} << base_bits) - 1));
    __m256i shifts[16];
    for (int g = 0; g < l / 4; ++g) {
      shifts[g] = _mm256_setr_epi64x(base_bits * (l - 1 - 4 * g), base_bits * (l - 2 - 4 * g),
                                     base_bits * (l - 3 - 4 * g), base_bits * (l - 4 - 4 * g));
    }
    for (int64_t i = 0; i < n; ++i) {
      const __m256i v = _mm256_set1_epi64x(static_cast<long long>(c[i]));
      for (int g = 0; g < l / 4; ++g) {
        const __m256i d = _mm256_and_si256(_mm256_srlv_epi64(v, shifts[g]), mask);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i * l + 4 * g), d);
      }
    }
  }
  static void dot1(const uint64_t* m, const uint64_t* d, int64_t len, uint64_t& acc) {
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    const int64_t end = len - len % 8;
    for (int64_t j = 0; j < end; j += 8) {
      a0 = _mm256_add_epi64(a0, term(load(m + j), load(d + j)));
      a1 = _mm256_add_epi64(a1, term(load(m + j + 4), load(d + j + 4)));
    }
    uint64_t s = hsum(_mm256_add_epi64(a0, a1));
    for (int64_t j = end; j < len; ++j) s += scalar_term(m[j], d[j]);
    acc += s;
  }
};

}  // namespace

void keyswitch_avx2(const uint64_t* M, int64_t rows, int64_t n, int base_bits, int skip_low,
                    const uint64_t* c, uint64_t* out, int threads) {
  if (base_bits == 1) {
    keyswitch_driver<Avx2Dot<true>>(M, rows, n, base_bits, skip_low, c, out, threads);
  } else {
    keyswitch_driver<Avx2Dot<false>>(M, rows, n, base_bits, skip_low, c, out, threads);
  }
}

}  // namespace cf
