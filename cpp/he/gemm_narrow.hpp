// The narrow (matrix-vector) GEMM path of the SIMD drivers: C = W * S mod 2^64
// when S has at most kNarrowCols columns (e.g. encrypting a few vectors: P r).
// Bandwidth-bound: every row of W is read once and multiplied by each column
// of S with wrapping uint64 multiply-adds, which the compiler vectorizes with
// the flags of the including ISA file (vpmullq on AVX-512DQ, pmuludq on AVX2).
// Bit-identical to gemm_wide_small_scalar (tested): both compute the same sum
// modulo 2^64, where the order of the additions does not matter.
//
// Rows are taken in blocks of narrow_row_block(n) (8 rows for one or two columns,
// 4 for more): the block's rows are independent read streams for the prefetchers, and
// each loaded word of S is used once per row of the block. Accumulators are
// lane-wise (kLanes per row and column) and reduced once per row at the end, so
// the inner loop is one load of W, one multiply and one add per lane.
//
// A template on the including file's kernel type (internal linkage), so each
// ISA file gets its own instance compiled with its own flags.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "he/kernels.hpp"
#include "he/parallel.hpp"

namespace cf {

/// Widest S (in columns) that the narrow path can take; each ISA's kernel type sets
/// its own crossover to the split-limb float64 GEMM (Kernel::kNarrowMaxCols, measured:
/// bench/bench_he.py, docs/he.md).
constexpr int64_t kNarrowCols = 64;

/// Columns per pass over W: wider S is taken in chunks of this many columns.
constexpr int64_t kNarrowChunk = 8;

/// Independent accumulator lanes per (row, column): one AVX-512 vector of uint64.
constexpr int kNarrowLanes = 8;

/// Rows per block for `cols` columns (measured on AVX-512 and AVX2: more rows per block
/// than registers hold still wins, the extra read streams outweigh the spills).
constexpr int narrow_row_block(int cols) { return cols <= 2 ? 8 : 4; }

/// kNarrowLanes uint64 words as one GCC/Clang vector (lowered to the including file's
/// ISA: one zmm register and vpmullq with AVX-512DQ).
typedef uint64_t NarrowVec __attribute__((vector_size(8 * kNarrowLanes)));

/// C[i0 + r][j] = sum_p W[r * rs + p] * s[j * k + p] for r < R, j < NC (mod 2^64).
///
/// Kernel::kNarrowVectors picks the form of the inner loop: explicit vectors (each
/// word of W and S loaded once per block; measured faster with AVX-512) or lane
/// arrays the compiler vectorizes (measured faster with AVX2's emulated 64-bit
/// multiplies). Both compute the same sums modulo 2^64.
template <class Kernel, int R, int NC>
void narrow_block(const uint64_t* __restrict w, int64_t rs, const uint64_t* __restrict s, int64_t k,
                  View2D<uint64_t> C, int64_t i0) {
  constexpr int L = kNarrowLanes;
  uint64_t acc[R][NC][L] = {};
  int64_t p = 0;
  if constexpr (Kernel::kNarrowVectors) {
    NarrowVec vacc[R][NC];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NC; ++j) vacc[r][j] = NarrowVec{};
    for (; p + L <= k; p += L) {
      NarrowVec wv[R];
      for (int r = 0; r < R; ++r) std::memcpy(&wv[r], w + r * rs + p, sizeof(NarrowVec));
      for (int j = 0; j < NC; ++j) {
        NarrowVec sv;
        std::memcpy(&sv, s + j * k + p, sizeof(NarrowVec));
        for (int r = 0; r < R; ++r) vacc[r][j] += wv[r] * sv;
      }
    }
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NC; ++j)
        for (int l = 0; l < L; ++l) acc[r][j][l] = vacc[r][j][l];
  } else {
    for (; p + L <= k; p += L) {
      for (int r = 0; r < R; ++r) {
        for (int j = 0; j < NC; ++j) {
          for (int l = 0; l < L; ++l) acc[r][j][l] += w[r * rs + p + l] * s[j * k + p + l];
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < NC; ++j) {
      uint64_t sum = 0;
      for (int l = 0; l < L; ++l) sum += acc[r][j][l];
      for (int64_t q = p; q < k; ++q) sum += w[r * rs + q] * s[j * k + q];
      C.at(i0 + r, j) = sum;
    }
  }
}

/// Rows [r0, r1) of C for NC columns of S (given as contiguous uint64 columns `s`).
template <class Kernel, int NC>
void narrow_rows(View2D<const uint64_t> W, const uint64_t* s, View2D<uint64_t> C, int64_t r0,
                 int64_t r1) {
  constexpr int R = narrow_row_block(NC);
  const int64_t k = W.cols;
  const bool strided = W.col_stride != 1;
  // Strided rows are gathered once into `copy`, then read as contiguous.
  std::vector<uint64_t> copy(strided ? static_cast<size_t>(R * k) : 0);
  auto rows_at = [&](int64_t i, int count) -> const uint64_t* {
    if (!strided) return W.data + i * W.row_stride;
    for (int r = 0; r < count; ++r) {
      const uint64_t* row = W.data + (i + r) * W.row_stride;
      uint64_t* dst = copy.data() + r * k;
      for (int64_t p = 0; p < k; ++p) dst[p] = row[p * W.col_stride];
    }
    return copy.data();
  };
  const int64_t rs = strided ? k : W.row_stride;
  int64_t i = r0;
  for (; i + R <= r1; i += R) narrow_block<Kernel, R, NC>(rows_at(i, R), rs, s, k, C, i);
  for (; i < r1; ++i) narrow_block<Kernel, 1, NC>(rows_at(i, 1), rs, s, k, C, i);
}

template <class Kernel, int NC>
void narrow_run(View2D<const uint64_t> W, const uint64_t* s, View2D<uint64_t> C, int threads) {
  parallel_for(C.rows, threads, 4 * narrow_row_block(NC),
               [&](int64_t r0, int64_t r1) { narrow_rows<Kernel, NC>(W, s, C, r0, r1); });
}

/// C = W S for one chunk of at most kNarrowChunk columns (`s`: its columns, contiguous).
template <class Kernel>
void narrow_chunk(View2D<const uint64_t> W, const uint64_t* s, View2D<uint64_t> C, int threads) {
  switch (C.cols) {
    case 1:
      return narrow_run<Kernel, 1>(W, s, C, threads);
    case 2:
      return narrow_run<Kernel, 2>(W, s, C, threads);
    case 3:
      return narrow_run<Kernel, 3>(W, s, C, threads);
    case 4:
      return narrow_run<Kernel, 4>(W, s, C, threads);
    case 5:
      return narrow_run<Kernel, 5>(W, s, C, threads);
    case 6:
      return narrow_run<Kernel, 6>(W, s, C, threads);
    case 7:
      return narrow_run<Kernel, 7>(W, s, C, threads);
    case 8:
      static_assert(kNarrowChunk == 8, "one case per column count up to kNarrowChunk");
      return narrow_run<Kernel, 8>(W, s, C, threads);
    default:
      throw KernelArgumentError("gemm_narrow: a chunk of more than kNarrowChunk columns");
  }
}

template <class Kernel>
void gemm_narrow(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                 int threads) {
  const int64_t k = W.cols;
  const int64_t n = S.cols;
  if (n > kNarrowCols) throw KernelArgumentError("gemm_narrow: more than kNarrowCols columns");
  if (C.rows == 0 || n == 0) return;
  // Columns of S as contiguous uint64 words (two's complement: the same product mod 2^64).
  std::vector<uint64_t> s(static_cast<size_t>(n * k));
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t p = 0; p < k; ++p) {
      s[static_cast<size_t>(j * k + p)] = static_cast<uint64_t>(S.at(p, j));
    }
  }
  // More than kNarrowChunk columns: one pass over W per chunk of columns.
  for (int64_t c0 = 0; c0 < n; c0 += kNarrowChunk) {
    const int64_t cols = std::min<int64_t>(kNarrowChunk, n - c0);
    const View2D<uint64_t> part{&C.at(0, c0), C.rows, cols, C.row_stride, C.col_stride};
    narrow_chunk<Kernel>(W, s.data() + c0 * k, part, threads);
  }
}

}  // namespace cf
