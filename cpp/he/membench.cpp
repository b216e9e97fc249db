// Memory-read roofline probe: the sum of a large array, read once.
// Benchmarks compare key switching (which streams its matrix once) against
// this, measured in the same run.
#include <cstdint>

#include "he/kernels.hpp"
#include "he/parallel.hpp"

#if defined(CIPHERFUSE_HAVE_AVX2)
#include <immintrin.h>
#endif

namespace cf {

namespace {

#if defined(CIPHERFUSE_HAVE_AVX2)
__attribute__((target("avx2"))) uint64_t sum_avx2(const uint64_t* p, int64_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
  __m256i a2 = _mm256_setzero_si256(), a3 = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  alignas(32) uint64_t t[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t),
                     _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  uint64_t s = t[0] + t[1] + t[2] + t[3];
  for (; i < n; ++i) s += p[i];
  return s;
}
#endif

uint64_t sum_scalar(const uint64_t* p, int64_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i) s0 += p[i];
  return s0 + s1 + s2 + s3;
}

}  // namespace

uint64_t stream_sum(const uint64_t* p, int64_t n, int threads) {
  if (threads < 1) threads = default_threads();
  if (threads > 256) threads = 256;
  const bool simd = isa_available(Isa::Avx2);
  const int64_t parts = threads;
  uint64_t partial[256] = {};
  const int64_t per = (n + parts - 1) / parts;
  parallel_for(parts, threads, 1, [&](int64_t a, int64_t b) {
    for (int64_t t = a; t < b; ++t) {
      const int64_t lo = t * per;
      const int64_t hi = n < lo + per ? n : lo + per;
      if (lo >= hi) continue;
#if defined(CIPHERFUSE_HAVE_AVX2)
      partial[t] = simd ? sum_avx2(p + lo, hi - lo) : sum_scalar(p + lo, hi - lo);
#else
      (void)simd;
      partial[t] = sum_scalar(p + lo, hi - lo);
#endif
    }
  });
  uint64_t s = 0;
  for (int64_t t = 0; t < parts; ++t) s += partial[t];
  return s;
}

}  // namespace cf
