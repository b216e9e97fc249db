// cipherfuse — local share kernels of honest-majority three-party computation
// (replicated secret sharing over Z_2^64 and its boolean counterpart).
//
// Every kernel is exact: ring results are mod 2^64 (native uint64 wrap-around),
// boolean results are bitwise on packed 64-bit words. Each has a scalar
// reference; the SIMD variants (AVX2 and AVX-512 on x86-64, NEON on AArch64)
// live in per-ISA files and are tested bit for bit against it
// (cpp/tests/test_mpc.cpp). Operands are dense and C-contiguous.
#pragma once

#include <cstdint>

#include "he/kernels.hpp"  // Isa, KernelArgumentError, isa_available, default_threads
#include "he/seeded.hpp"   // ConvShape

namespace cf {
namespace mpc {

// ---------------------------------------------------------------- ring GEMM
/// C = A * B mod 2^64 for row-major uint64 A (m x k), B (k x n); C (m x n) is
/// overwritten. Cache-blocked (B packed once, A packed per row block) and split
/// over `threads` row blocks (threads < 1: default_threads()).
void ring_gemm(Isa isa, const uint64_t* A, const uint64_t* B, uint64_t* C, int64_t m, int64_t k,
               int64_t n, int threads);

/// The AVX-512 variants of ring_gemm, both bit-identical: "mullo" multiplies
/// with vpmullq (AVX-512DQ), "split" with two 32-bit products (vpmuludq for
/// lo*lo, vpmulld for the two cross terms) like the AVX2 path. ring_gemm picks
/// mullo (faster where measured, docs/mpc-kernels.md); split stays for the
/// benchmark and for CPUs where vpmullq is slow.
enum class GemmVariant : int { Default = 0, Avx512Split = 1 };
void ring_gemm_variant(GemmVariant variant, Isa isa, const uint64_t* A, const uint64_t* B,
                       uint64_t* C, int64_t m, int64_t k, int64_t n, int threads);

// ---------------------------------------------------------------- ring convolution
/// out[i, oy, ox, :] = sum_{ky, kx, ch} x[i, iy, ix, ch] * kern[ky, kx, ch, :] (mod 2^64)
/// with (iy, ix) = (oy * stride_h - pad_top + ky, ox * stride_w - pad_left + kx) and
/// taps outside the image reading zero: the geometry of cf::ConvShape (he/seeded.hpp),
/// checked by cf::check_conv_shape. Any uint64 operands (both may be full-width
/// shares). x: n*h*w*c, kern: kh*kw*c*f, out: n*out_h*out_w*f words, all NHWC and
/// C-contiguous; out is overwritten. The ring GEMM's micro-kernels on patches packed
/// per block of output pixels (ring_conv_driver.hpp), images split over `threads`.
void ring_conv(Isa isa, const ConvShape& s, const uint64_t* x, const uint64_t* kern, uint64_t* out,
               int threads);

// ---------------------------------------------------------------- RSS local steps
/// z = x0*y0 + x0*y1 + x1*y0 + mask (mod 2^64), element-wise over `count` words.
void rss_mul_local(Isa isa, const uint64_t* x0, const uint64_t* x1, const uint64_t* y0,
                   const uint64_t* y1, const uint64_t* mask, uint64_t* z, int64_t count,
                   int threads);
/// z = (x0&y0) ^ (x0&y1) ^ (x1&y0) ^ mask, element-wise over `count` words.
void rss_and_local(Isa isa, const uint64_t* x0, const uint64_t* x1, const uint64_t* y0,
                   const uint64_t* y1, const uint64_t* mask, uint64_t* z, int64_t count,
                   int threads);

// ---------------------------------------------------------------- bit slicing
/// Number of 64-bit words of one bit plane of n elements: ceil(n / 64).
int64_t plane_words(int64_t n);
/// planes[b * words + w] bit j = bit b of x[64 w + j] for b < bits (elements
/// past n read as zero), words = plane_words(n); 1 <= bits <= 64.
void bitslice(Isa isa, const uint64_t* x, int64_t n, int bits, uint64_t* planes, int threads);
/// Inverse: x[i] bit b = planes[b * words + i / 64] bit (i % 64) for b < bits,
/// higher bits zero; i < n <= 64 * words.
void unbitslice(Isa isa, const uint64_t* planes, int bits, int64_t words, int64_t n, uint64_t* x,
                int threads);

/// In-place transpose of a 64 x 64 bit matrix: row i is word a[i], column j its
/// bit j (least significant first). The scalar reference of the bit-slice kernels.
void transpose64(uint64_t a[64]);

// ---------------------------------------------------------------- per-ISA entry points
// Unchecked: the dispatcher (dispatch.cpp) validates and picks one set from a
// table indexed by Isa. Per ISA X (scalar, avx2, avx512, neon):
//   ring_gemm_X(A, B, C, m, k, n, threads)         the whole GEMM (own packing, threads)
//   ring_conv_X(shape, x, kern, out, threads)       the whole convolution (the same micro-kernel)
//   rss_mul_X / rss_and_X(x0, x1, y0, y1, mask, z, count)   one thread's range
//   bitslice_groups_X(x, groups, bits, words, planes)
//       x[0 .. 64 groups) -> planes[b * words + g] for b < bits, g < groups
//   unbitslice_groups_X(planes, bits, words, groups, x)     the inverse
#define CF_MPC_DECLARE_ISA(X)                                                                      \
  void ring_gemm_##X(const uint64_t* A, const uint64_t* B, uint64_t* C, int64_t m, int64_t k,      \
                     int64_t n, int threads);                                                      \
  void ring_conv_##X(const ConvShape& s, const uint64_t* x, const uint64_t* kern, uint64_t* out,   \
                     int threads);                                                                 \
  void rss_mul_##X(const uint64_t* x0, const uint64_t* x1, const uint64_t* y0, const uint64_t* y1, \
                   const uint64_t* mask, uint64_t* z, int64_t count);                              \
  void rss_and_##X(const uint64_t* x0, const uint64_t* x1, const uint64_t* y0, const uint64_t* y1, \
                   const uint64_t* mask, uint64_t* z, int64_t count);                              \
  void bitslice_groups_##X(const uint64_t* x, int64_t groups, int bits, int64_t words,             \
                           uint64_t* planes);                                                      \
  void unbitslice_groups_##X(const uint64_t* planes, int bits, int64_t words, int64_t groups,      \
                             uint64_t* x);

CF_MPC_DECLARE_ISA(scalar)
#if defined(CIPHERFUSE_HAVE_AVX2)
CF_MPC_DECLARE_ISA(avx2)
CF_MPC_DECLARE_ISA(avx512)
/// ring_gemm with the vpmuludq/vpmulld product in zmm registers (GemmVariant::Avx512Split).
void ring_gemm_avx512_split(const uint64_t* A, const uint64_t* B, uint64_t* C, int64_t m, int64_t k,
                            int64_t n, int threads);
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
CF_MPC_DECLARE_ISA(neon)
#endif

}  // namespace mpc
}  // namespace cf
