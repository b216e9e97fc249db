// The narrow (matrix-vector) GEMM path of the SIMD drivers: C = W * S mod 2^64
// when S has at most kNarrowCols columns (e.g. encrypting one vector: P r).
// Bandwidth-bound: every row of W is read once and multiplied by each column
// of S with wrapping uint64 multiply-adds, which the compiler vectorizes with
// the flags of the including ISA file (vpmullq on AVX-512DQ, pmuludq on AVX2).
// Bit-identical to gemm_wide_small_scalar (tested): both compute the same sum
// modulo 2^64, where the order of the additions does not matter.
//
// A template on the including file's kernel type (internal linkage), so each
// ISA file gets its own instance compiled with its own flags.
#pragma once

#include <cstdint>
#include <vector>

#include "he/kernels.hpp"
#include "he/parallel.hpp"

namespace cf {

/// Widest S (in columns) that the narrow path takes.
constexpr int64_t kNarrowCols = 4;

template <class Kernel>
uint64_t narrow_dot(const uint64_t* __restrict w, const uint64_t* __restrict s, int64_t k) {
  uint64_t acc = 0;
  for (int64_t p = 0; p < k; ++p) acc += w[p] * s[p];
  return acc;
}

template <class Kernel>
void gemm_narrow(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                 int threads) {
  const int64_t k = W.cols;
  const int64_t n = S.cols;
  // Columns of S as contiguous uint64 words (two's complement: the same product mod 2^64).
  std::vector<uint64_t> s(static_cast<size_t>(n * k));
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t p = 0; p < k; ++p) {
      s[static_cast<size_t>(j * k + p)] = static_cast<uint64_t>(S.at(p, j));
    }
  }
  parallel_for(C.rows, threads, 16, [&](int64_t r0, int64_t r1) {
    std::vector<uint64_t> row_copy(W.col_stride == 1 ? 0 : static_cast<size_t>(k));
    for (int64_t i = r0; i < r1; ++i) {
      const uint64_t* row = W.data + i * W.row_stride;
      if (W.col_stride != 1) {  // a strided row: gather it once, then as contiguous
        for (int64_t p = 0; p < k; ++p) row_copy[static_cast<size_t>(p)] = row[p * W.col_stride];
        row = row_copy.data();
      }
      for (int64_t j = 0; j < n; ++j) C.at(i, j) = narrow_dot<Kernel>(row, s.data() + j * k, k);
    }
  });
}

}  // namespace cf
