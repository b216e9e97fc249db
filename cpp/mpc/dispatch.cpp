// Argument checks, threading of the element-wise kernels, bit-slice tails and
// run-time selection: one table of kernel pointers per ISA built into the
// library, chosen with isa_select (he/isa_dispatch.hpp).
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "he/conv.hpp"  // check_conv_shape
#include "he/isa_dispatch.hpp"
#include "he/parallel.hpp"
#include "mpc/kernels.hpp"

namespace cf {
namespace mpc {

namespace {

struct KernelTable {
  decltype(&ring_gemm_scalar) ring_gemm;
  decltype(&ring_conv_scalar) ring_conv;
  decltype(&rss_mul_scalar) rss_mul;
  decltype(&rss_and_scalar) rss_and;
  decltype(&bitslice_groups_scalar) bitslice_groups;
  decltype(&unbitslice_groups_scalar) unbitslice_groups;
};

#define CF_MPC_TABLE(X)                                                          \
  KernelTable {                                                                  \
    ring_gemm_##X, ring_conv_##X, rss_mul_##X, rss_and_##X, bitslice_groups_##X, \
        unbitslice_groups_##X                                                    \
  }

const KernelTable kScalar = CF_MPC_TABLE(scalar);
#if defined(CIPHERFUSE_HAVE_AVX2)
const KernelTable kAvx2 = CF_MPC_TABLE(avx2);
const KernelTable kAvx512 = CF_MPC_TABLE(avx512);
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
const KernelTable kNeon = CF_MPC_TABLE(neon);
#endif

const IsaTable<const KernelTable*> kTables{&kScalar, CF_IF_X86(&kAvx2), CF_IF_X86(&kAvx512),
                                           CF_IF_NEON(&kNeon)};

const KernelTable& table_for(Isa isa, const char* kernel) {
  return *isa_select(kTables, isa, kernel);
}

#undef CF_MPC_TABLE

// Element-wise kernels: enough words per thread to amortise a thread start.
constexpr int64_t kElementGrain = int64_t{1} << 14;
// Bit-slice groups per thread chunk (a multiple of every ISA's lane count).
constexpr int64_t kGroupGrain = 64;

int thread_count(int threads) { return threads < 1 ? default_threads() : threads; }

void check_gemm(int64_t m, int64_t k, int64_t n) {
  require_arg(m >= 0 && k >= 0 && n >= 0, "ring_gemm", "negative dimension");
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 8;
  require_arg((k == 0 || m <= kMax / k) && (n == 0 || k <= kMax / n) && (n == 0 || m <= kMax / n),
              "ring_gemm", "operands too large");
}

}  // namespace

void ring_gemm(Isa isa, const uint64_t* A, const uint64_t* B, uint64_t* C, int64_t m, int64_t k,
               int64_t n, int threads) {
  check_gemm(m, k, n);
  table_for(isa, "ring_gemm").ring_gemm(A, B, C, m, k, n, thread_count(threads));
}

void ring_gemm_variant(GemmVariant variant, Isa isa, const uint64_t* A, const uint64_t* B,
                       uint64_t* C, int64_t m, int64_t k, int64_t n, int threads) {
  if (variant == GemmVariant::Default) {
    ring_gemm(isa, A, B, C, m, k, n, threads);
    return;
  }
  check_gemm(m, k, n);
  require_arg(isa == Isa::Avx512, "ring_gemm", "the split variant exists for avx512 only");
  (void)table_for(isa, "ring_gemm");  // availability
#if defined(CIPHERFUSE_HAVE_AVX2)
  ring_gemm_avx512_split(A, B, C, m, k, n, thread_count(threads));
#else
  (void)A, (void)B, (void)C;
#endif
}

void ring_conv(Isa isa, const ConvShape& s, const uint64_t* x, const uint64_t* kern, uint64_t* out,
               int threads) {
  check_conv_shape(s, "ring_conv");
  const auto kernel = table_for(isa, "ring_conv").ring_conv;
  kernel(s, x, kern, out, thread_count(threads));
}

void rss_mul_local(Isa isa, const uint64_t* x0, const uint64_t* x1, const uint64_t* y0,
                   const uint64_t* y1, const uint64_t* mask, uint64_t* z, int64_t count,
                   int threads) {
  require_arg(count >= 0, "rss_mul_local", "negative size");
  const auto kernel = table_for(isa, "rss_mul_local").rss_mul;
  parallel_for(count, thread_count(threads), kElementGrain, [&](int64_t b, int64_t e) {
    kernel(x0 + b, x1 + b, y0 + b, y1 + b, mask + b, z + b, e - b);
  });
}

void rss_and_local(Isa isa, const uint64_t* x0, const uint64_t* x1, const uint64_t* y0,
                   const uint64_t* y1, const uint64_t* mask, uint64_t* z, int64_t count,
                   int threads) {
  require_arg(count >= 0, "rss_and_local", "negative size");
  const auto kernel = table_for(isa, "rss_and_local").rss_and;
  parallel_for(count, thread_count(threads), kElementGrain, [&](int64_t b, int64_t e) {
    kernel(x0 + b, x1 + b, y0 + b, y1 + b, mask + b, z + b, e - b);
  });
}

int64_t plane_words(int64_t n) { return n <= 0 ? 0 : (n - 1) / 64 + 1; }

void bitslice(Isa isa, const uint64_t* x, int64_t n, int bits, uint64_t* planes, int threads) {
  require_arg(n >= 0, "bitslice", "negative size");
  require_arg(bits >= 1 && bits <= 64, "bitslice",
              "bits must be in 1..64, got " + std::to_string(bits));
  const auto kernel = table_for(isa, "bitslice").bitslice_groups;
  const int64_t words = plane_words(n);
  const int64_t full = n / 64;
  parallel_for(full, thread_count(threads), kGroupGrain, [&](int64_t g0, int64_t g1) {
    kernel(x + 64 * g0, g1 - g0, bits, words, planes + g0);
  });
  if (full < words) {  // the last, partial group: zero-padded copy
    uint64_t tail[64] = {};
    std::memcpy(tail, x + 64 * full, static_cast<size_t>(n - 64 * full) * sizeof(uint64_t));
    kernel(tail, 1, bits, words, planes + full);
  }
}

void unbitslice(Isa isa, const uint64_t* planes, int bits, int64_t words, int64_t n, uint64_t* x,
                int threads) {
  require_arg(bits >= 1 && bits <= 64, "unbitslice",
              "planes must have 1..64 rows, got " + std::to_string(bits));
  require_arg(words >= 0, "unbitslice", "negative size");
  require_arg(
      n >= 0 && n / 64 <= words && (n % 64 == 0 || n / 64 < words), "unbitslice",
      "n must be in 0..64 * words = " + std::to_string(64 * words) + ", got " + std::to_string(n));
  const auto kernel = table_for(isa, "unbitslice").unbitslice_groups;
  const int64_t full = n / 64;
  parallel_for(full, thread_count(threads), kGroupGrain, [&](int64_t g0, int64_t g1) {
    kernel(planes + g0, bits, words, g1 - g0, x + 64 * g0);
  });
  if (n % 64 != 0) {
    uint64_t tail[64];
    kernel(planes + full, bits, words, 1, tail);
    std::memcpy(x + 64 * full, tail, static_cast<size_t>(n - 64 * full) * sizeof(uint64_t));
  }
}

}  // namespace mpc
}  // namespace cf
