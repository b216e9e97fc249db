// AVX-512 replicated-sharing local steps, 8 words per vector: vpmullq
// (AVX-512DQ) for the ring products, vpternlogq for the boolean one (two
// ternary-logic instructions and one xor per 8 words). Tails run the scalar
// reference.
#include <immintrin.h>

#include "mpc/kernels.hpp"

namespace cf {
namespace mpc {

void rss_mul_avx512(const uint64_t* x0, const uint64_t* x1, const uint64_t* y0, const uint64_t* y1,
                    const uint64_t* mask, uint64_t* z, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m512i b0 = _mm512_loadu_si512(y0 + i);
    const __m512i s = _mm512_add_epi64(b0, _mm512_loadu_si512(y1 + i));
    const __m512i v =
        _mm512_add_epi64(_mm512_add_epi64(_mm512_mullo_epi64(_mm512_loadu_si512(x0 + i), s),
                                          _mm512_mullo_epi64(_mm512_loadu_si512(x1 + i), b0)),
                         _mm512_loadu_si512(mask + i));
    _mm512_storeu_si512(z + i, v);
  }
  rss_mul_scalar(x0 + i, x1 + i, y0 + i, y1 + i, mask + i, z + i, count - i);
}

void rss_and_avx512(const uint64_t* x0, const uint64_t* x1, const uint64_t* y0, const uint64_t* y1,
                    const uint64_t* mask, uint64_t* z, int64_t count) {
  // Truth tables over (A, B, C) = bits (0xF0, 0xCC, 0xAA):
  //   A & (B ^ C) = 0x60;  A ^ (B & C) = 0x78.
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m512i b0 = _mm512_loadu_si512(y0 + i);
    const __m512i t =
        _mm512_ternarylogic_epi64(_mm512_loadu_si512(x0 + i), b0, _mm512_loadu_si512(y1 + i), 0x60);
    const __m512i u = _mm512_ternarylogic_epi64(t, _mm512_loadu_si512(x1 + i), b0, 0x78);
    _mm512_storeu_si512(z + i, _mm512_xor_si512(u, _mm512_loadu_si512(mask + i)));
  }
  rss_and_scalar(x0 + i, x1 + i, y0 + i, y1 + i, mask + i, z + i, count - i);
}

}  // namespace mpc
}  // namespace cf
