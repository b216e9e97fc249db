// cipherfuse — integer-vector homomorphic encryption kernels.
//
// All arithmetic is modulo 2^64 on uint64_t (native wrap-around). Every kernel
// has a scalar reference implementation; SIMD variants (AVX2 on x86-64, NEON on
// aarch64) live in per-ISA files and must be bit-identical to the reference.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace cf {

// 128-bit integers (a GCC/Clang extension) for exact products of 64-bit words.
__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

enum class Isa : int { Scalar = 0, Avx2 = 1, Neon = 2, Avx512 = 3 };

/// Thrown on invalid kernel arguments (maps to ValueError in Python).
struct KernelArgumentError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// The argument check of every kernel entry point: KernelArgumentError "who: what"
/// unless `ok`.
inline void require_arg(bool ok, const char* who, const std::string& what) {
  if (!ok) throw KernelArgumentError(std::string(who) + ": " + what);
}

/// A strided 2-D view. Strides are in elements, not bytes.
template <typename T>
struct View2D {
  T* data;
  int64_t rows;
  int64_t cols;
  int64_t row_stride;
  int64_t col_stride;
  T& at(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
};

// ---------------------------------------------------------------- digits
/// Number of base-2^bits digits of a 64-bit word: ceil(64 / bits).
int digit_count(int base_bits);
/// Digit decomposition (Zhou–Wornell c*): digits of c[i] are written to
/// out[i*l .. i*l+l-1], most significant digit first (paper Eq. 5 order).
void decompose(const uint64_t* c, int64_t n, int base_bits, uint64_t* out);

// ---------------------------------------------------------------- GEMM
/// C = W * S (mod 2^64), W an m x k matrix of arbitrary uint64 words ("wide"),
/// S a k x n matrix of signed integers with |S| <= 2^40 ("small").
/// C is overwritten. Any operand may be strided (so transposes are free).
void gemm_wide_small(Isa isa, View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                     int threads);
/// Scalar reference (naive triple loop, wrapping multiply-add).
void gemm_wide_small_scalar(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                            int threads);
#if defined(CIPHERFUSE_HAVE_AVX2)
void gemm_wide_small_avx2(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                          int threads);
void gemm_wide_small_avx512(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                            int threads);
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
void gemm_wide_small_neon(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                          int threads);
#endif

// ---------------------------------------------------------------- key switching
/// out = M * c* (mod 2^64): M is rows x (n*l), row-major and contiguous,
/// c* the base-2^bits decomposition of c (length n). Bandwidth-bound.
/// `skip_low` least significant digits of every word must be zero (checked)
/// and their columns of M are not read.
void keyswitch(Isa isa, const uint64_t* M, int64_t rows, int64_t n, int base_bits, int skip_low,
               const uint64_t* c, uint64_t* out, int threads);
void keyswitch_scalar(const uint64_t* M, int64_t rows, int64_t n, int base_bits, int skip_low,
                      const uint64_t* c, uint64_t* out, int threads);
#if defined(CIPHERFUSE_HAVE_AVX2)
void keyswitch_avx2(const uint64_t* M, int64_t rows, int64_t n, int base_bits, int skip_low,
                    const uint64_t* c, uint64_t* out, int threads);
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
void keyswitch_neon(const uint64_t* M, int64_t rows, int64_t n, int base_bits, int skip_low,
                    const uint64_t* c, uint64_t* out, int threads);
#endif

// ---------------------------------------------------------------- tensor
/// Paper Eq. 44: out[j*n1 + i] = round(a_i * b_j / 2^shift) mod 2^64, where a_i
/// and b_j are read as signed (centred) 64-bit integers, the product is exact
/// (128-bit) and rounding is half-up: floor((a_i*b_j + 2^(shift-1)) / 2^shift).
void tensor_round(const uint64_t* a, int64_t n1, const uint64_t* b, int64_t n2, int shift,
                  uint64_t* out, int threads);

// ---------------------------------------------------------------- roofline
/// Sum of p[0..n) mod 2^64, reading memory once (threads <= 256): the
/// memory-read bandwidth probe used by the benchmarks.
uint64_t stream_sum(const uint64_t* p, int64_t n, int threads);

// ---------------------------------------------------------------- dispatch
/// True if this CPU can run `isa` and the library was built with it.
bool isa_available(Isa isa);
/// The fastest available ISA on this CPU.
Isa best_isa();
const char* isa_name(Isa isa);
Isa isa_from_name(const std::string& name);

/// Default number of worker threads (hardware concurrency, at least 1).
int default_threads();

}  // namespace cf
