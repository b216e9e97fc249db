// AVX-512 bit slicing: eight 64-element groups at once, one group per 64-bit
// lane; rows are gathered with 8 x 8 word transposes (unpack + two rounds of
// 128-bit lane shuffles), the six transpose stages run on whole zmm vectors,
// and the planes of eight consecutive groups are stored as one vector. Group
// counts not divisible by 8 finish on the scalar reference.
#include <immintrin.h>

#include "mpc/bitslice_driver.hpp"
#include "mpc/kernels.hpp"

namespace cf {
namespace mpc {

namespace {

struct Avx512Ops {
  static constexpr int V = 8;
  using T = __m512i;
  template <int J>
  static T shr(T a) {
    return _mm512_srli_epi64(a, J);
  }
  template <int J>
  static T shl(T a) {
    return _mm512_slli_epi64(a, J);
  }
  static T bxor(T a, T b) { return _mm512_xor_si512(a, b); }
  static T band(T a, T b) { return _mm512_and_si512(a, b); }
  static T splat(uint64_t v) { return _mm512_set1_epi64(static_cast<long long>(v)); }
};

// In-place transpose of the 8 x 8 word matrix r[0..8).
inline void transpose8(__m512i* r) {
  __m512i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm512_unpacklo_epi64(r[i], r[i + 1]);      // ri[0] ri+1[0] ri[2] ri+1[2] ...
    t[i + 1] = _mm512_unpackhi_epi64(r[i], r[i + 1]);  // ri[1] ri+1[1] ri[3] ri+1[3] ...
  }
  for (int h = 0; h < 8; h += 4) {                              // rows h..h+3
    u[h + 0] = _mm512_shuffle_i64x2(t[h + 0], t[h + 2], 0x88);  // columns 0, 4
    u[h + 1] = _mm512_shuffle_i64x2(t[h + 0], t[h + 2], 0xDD);  // columns 2, 6
    u[h + 2] = _mm512_shuffle_i64x2(t[h + 1], t[h + 3], 0x88);  // columns 1, 5
    u[h + 3] = _mm512_shuffle_i64x2(t[h + 1], t[h + 3], 0xDD);  // columns 3, 7
  }
  r[0] = _mm512_shuffle_i64x2(u[0], u[4], 0x88);
  r[4] = _mm512_shuffle_i64x2(u[0], u[4], 0xDD);
  r[2] = _mm512_shuffle_i64x2(u[1], u[5], 0x88);
  r[6] = _mm512_shuffle_i64x2(u[1], u[5], 0xDD);
  r[1] = _mm512_shuffle_i64x2(u[2], u[6], 0x88);
  r[5] = _mm512_shuffle_i64x2(u[2], u[6], 0xDD);
  r[3] = _mm512_shuffle_i64x2(u[3], u[7], 0x88);
  r[7] = _mm512_shuffle_i64x2(u[3], u[7], 0xDD);
}

}  // namespace

void bitslice_groups_avx512(const uint64_t* x, int64_t groups, int bits, int64_t words,
                            uint64_t* planes) {
  __m512i r[64];
  int64_t g = 0;
  for (; g + 8 <= groups; g += 8) {
    const uint64_t* src = x + 64 * g;
    for (int i = 0; i < 64; i += 8) {
      __m512i* row = r + i;
      for (int v = 0; v < 8; ++v) row[v] = _mm512_loadu_si512(src + 64 * v + i);
      transpose8(row);
    }
    transpose64_lanes<Avx512Ops>(r);
    for (int b = 0; b < bits; ++b) _mm512_storeu_si512(planes + b * words + g, r[b]);
  }
  bitslice_groups_scalar(x + 64 * g, groups - g, bits, words, planes + g);
}

void unbitslice_groups_avx512(const uint64_t* planes, int bits, int64_t words, int64_t groups,
                              uint64_t* x) {
  __m512i r[64];
  int64_t g = 0;
  for (; g + 8 <= groups; g += 8) {
    for (int b = 0; b < 64; ++b)
      r[b] = b < bits ? _mm512_loadu_si512(planes + b * words + g) : _mm512_setzero_si512();
    transpose64_lanes<Avx512Ops>(r);
    uint64_t* dst = x + 64 * g;
    for (int i = 0; i < 64; i += 8) {
      __m512i* row = r + i;
      transpose8(row);
      for (int v = 0; v < 8; ++v) _mm512_storeu_si512(dst + 64 * v + i, row[v]);
    }
  }
  unbitslice_groups_scalar(planes + g, bits, words, groups - g, x + 64 * g);
}

}  // namespace mpc
}  // namespace cf
