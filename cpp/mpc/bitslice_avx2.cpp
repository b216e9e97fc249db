// AVX2 bit slicing: four 64-element groups at once, one group per 64-bit
// lane; rows are gathered with 4 x 4 word transposes, the six transpose stages
// run on whole vectors, and the planes of four consecutive groups are stored
// as one contiguous vector. Group counts not divisible by 4 finish on the
// scalar reference.
#include <immintrin.h>

#include "mpc/bitslice_driver.hpp"
#include "mpc/kernels.hpp"

namespace cf {
namespace mpc {

namespace {

struct Avx2Ops {
  static constexpr int V = 4;
  using T = __m256i;
  template <int J>
  static T shr(T a) {
    return _mm256_srli_epi64(a, J);
  }
  template <int J>
  static T shl(T a) {
    return _mm256_slli_epi64(a, J);
  }
  static T bxor(T a, T b) { return _mm256_xor_si256(a, b); }
  static T band(T a, T b) { return _mm256_and_si256(a, b); }
  static T splat(uint64_t v) { return _mm256_set1_epi64x(static_cast<long long>(v)); }
};

// In-place transpose of the 4 x 4 word matrix (r0..r3 rows).
inline void transpose4(__m256i& r0, __m256i& r1, __m256i& r2, __m256i& r3) {
  const __m256i t0 = _mm256_unpacklo_epi64(r0, r1);  // r0[0] r1[0] r0[2] r1[2]
  const __m256i t1 = _mm256_unpackhi_epi64(r0, r1);  // r0[1] r1[1] r0[3] r1[3]
  const __m256i t2 = _mm256_unpacklo_epi64(r2, r3);
  const __m256i t3 = _mm256_unpackhi_epi64(r2, r3);
  r0 = _mm256_permute2x128_si256(t0, t2, 0x20);
  r1 = _mm256_permute2x128_si256(t1, t3, 0x20);
  r2 = _mm256_permute2x128_si256(t0, t2, 0x31);
  r3 = _mm256_permute2x128_si256(t1, t3, 0x31);
}

inline __m256i load(const uint64_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline void store(uint64_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

}  // namespace

void bitslice_groups_avx2(const uint64_t* x, int64_t groups, int bits, int64_t words,
                          uint64_t* planes) {
  __m256i r[64];
  int64_t g = 0;
  for (; g + 4 <= groups; g += 4) {
    const uint64_t* src = x + 64 * g;
    for (int i = 0; i < 64; i += 4) {
      __m256i a = load(src + i), b = load(src + 64 + i), c = load(src + 128 + i),
              d = load(src + 192 + i);
      transpose4(a, b, c, d);
      r[i] = a;
      r[i + 1] = b;
      r[i + 2] = c;
      r[i + 3] = d;
    }
    transpose64_lanes<Avx2Ops>(r);
    for (int b = 0; b < bits; ++b) store(planes + b * words + g, r[b]);
  }
  bitslice_groups_scalar(x + 64 * g, groups - g, bits, words, planes + g);
}

void unbitslice_groups_avx2(const uint64_t* planes, int bits, int64_t words, int64_t groups,
                            uint64_t* x) {
  __m256i r[64];
  int64_t g = 0;
  for (; g + 4 <= groups; g += 4) {
    for (int b = 0; b < 64; ++b)
      r[b] = b < bits ? load(planes + b * words + g) : _mm256_setzero_si256();
    transpose64_lanes<Avx2Ops>(r);
    uint64_t* dst = x + 64 * g;
    for (int i = 0; i < 64; i += 4) {
      __m256i a = r[i], b = r[i + 1], c = r[i + 2], d = r[i + 3];
      transpose4(a, b, c, d);
      store(dst + i, a);
      store(dst + 64 + i, b);
      store(dst + 128 + i, c);
      store(dst + 192 + i, d);
    }
  }
  unbitslice_groups_scalar(planes + g, bits, words, groups - g, x + 64 * g);
}

}  // namespace mpc
}  // namespace cf
