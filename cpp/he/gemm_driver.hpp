// The exact split-limb GEMM driver shared by the SIMD paths (AVX2, NEON).
//
// C = W * S mod 2^64: W (m x k, uint64) is cut into 2-4 limbs (gemm_plan.hpp);
// each limb times S (k x n, small signed integers) is computed in float64 by
// the ISA's register-blocked micro-kernel over k-blocks short enough that
// every partial sum is an exact integer below 2^51; the block results come
// back as int64, are shifted into place and accumulated with wrapping uint64
// adds. A Kernel provides MR, NR and
//   static void run(int64_t kc, const double* A, const double* B, int64_t* out)
// computing out[r*NR + c] = sum_p A[r*kc + p] * B[p*NR + c] (exact int64), and
// kNarrowMaxCols, the widest S that takes the narrow path (gemm_narrow.hpp) instead,
// and kNarrowVectors, the form of that path's inner loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "he/gemm_narrow.hpp"
#include "he/gemm_plan.hpp"
#include "he/kernels.hpp"
#include "he/parallel.hpp"

namespace cf {

constexpr int64_t kGemmMC = 96;

/// Exact double of x < 2^52 without a scalar conversion instruction (vectorizes).
inline double limb_to_double(uint64_t x) {
  const uint64_t bits = x | 0x4330000000000000ULL;  // 2^52 + x as an IEEE double
  double d;
  std::memcpy(&d, &bits, sizeof(d));
  return d - 4503599627370496.0;  // - 2^52
}
constexpr int64_t kGemmNC = 512;

struct Block {
  View2D<const uint64_t> W;
  View2D<const int64_t> S;
  View2D<uint64_t> C;
  LimbPlan plan;
};

// Computes rows [r0, r1) x cols [c0, c1) of C.
template <class Kernel>
void gemm_region(const Block& g, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  const int64_t k = g.W.cols;
  const int limbs = g.plan.limbs;
  const int lb = g.plan.limb_bits;
  const int64_t kc_max = g.plan.kc;
  const uint64_t limb_mask = lb >= 64 ? ~uint64_t{0} : ((uint64_t{1} << lb) - 1);

  if (k == 0) {
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t j = c0; j < c1; ++j) g.C.at(i, j) = 0;
    return;
  }

  std::vector<double> Bp(static_cast<size_t>(
      kc_max * ((std::min(kGemmNC, c1 - c0) + Kernel::NR - 1) / Kernel::NR * Kernel::NR)));
  std::vector<double> Ap(static_cast<size_t>(
      limbs * kc_max * ((std::min(kGemmMC, r1 - r0) + Kernel::MR - 1) / Kernel::MR * Kernel::MR)));
  alignas(64) int64_t tile[Kernel::MR * Kernel::NR];
  alignas(64) uint64_t acc[Kernel::MR * Kernel::NR];

  for (int64_t jc = c0; jc < c1; jc += kGemmNC) {
    const int64_t nc = std::min(kGemmNC, c1 - jc);
    const int64_t npanels = (nc + Kernel::NR - 1) / Kernel::NR;
    for (int64_t pc = 0; pc < k; pc += kc_max) {
      const int64_t kc = std::min(kc_max, k - pc);
      // Pack S[pc:pc+kc, jc:jc+nc] into Kernel::NR-wide panels (zero padded).
      for (int64_t jp = 0; jp < npanels; ++jp) {
        double* dst = Bp.data() + jp * kc * Kernel::NR;
        for (int64_t p = 0; p < kc; ++p) {
          for (int c = 0; c < Kernel::NR; ++c) {
            const int64_t col = jc + jp * Kernel::NR + c;
            dst[p * Kernel::NR + c] =
                col < jc + nc ? static_cast<double>(g.S.at(pc + p, col)) : 0.0;
          }
        }
      }
      for (int64_t ic = r0; ic < r1; ic += kGemmMC) {
        const int64_t mc = std::min(kGemmMC, r1 - ic);
        const int64_t mpanels = (mc + Kernel::MR - 1) / Kernel::MR;
        const int64_t limb_stride = mpanels * kc * Kernel::MR;
        // Pack every limb of W[ic:ic+mc, pc:pc+kc] into MR-row panels, each row
        // contiguous in p (panel[l][r][p]) so the conversion vectorizes. Limbs
        // are < 2^32: double(x) = bits(x | 2^52 exponent) - 2^52, exactly.
        for (int64_t ip = 0; ip < mpanels; ++ip) {
          double* panel = Ap.data() + ip * kc * Kernel::MR;
          const int64_t valid = std::min<int64_t>(Kernel::MR, mc - ip * Kernel::MR);
          for (int r = static_cast<int>(valid); r < Kernel::MR; ++r) {
            for (int l = 0; l < limbs; ++l) {
              double* dst = panel + l * limb_stride + r * kc;
              for (int64_t p = 0; p < kc; ++p) dst[p] = 0.0;
            }
          }
          const uint64_t* base = &g.W.at(ic + ip * Kernel::MR, pc);
          const int64_t rs = g.W.row_stride;
          const int64_t cs = g.W.col_stride;
          if (cs == 1) {
            // Rows of W are contiguous (the public key P in an encryption): a unit-stride
            // loop the compiler vectorizes (the strided loop below does not).
            for (int64_t r = 0; r < valid; ++r) {
              const uint64_t* __restrict src = base + r * rs;
              // The same k-block of the row one panel further down is read next: ask
              // for it now (into L2). Without this the packing waits on DRAM latency,
              // row segment after row segment (measured: ~40 % of the GEMM time).
              if (ic + ip * Kernel::MR + r + Kernel::MR < r1) {
                const uint64_t* ahead = src + Kernel::MR * rs;
                for (int64_t p = 0; p < kc; p += 8) __builtin_prefetch(ahead + p, 0, 2);
              }
              for (int l = 0; l < limbs; ++l) {
                double* __restrict dst = panel + l * limb_stride + r * kc;
                const int shift = l * lb;
                for (int64_t p = 0; p < kc; ++p) {
                  dst[p] = limb_to_double((src[p] >> shift) & limb_mask);
                }
              }
            }
          } else if (rs != 1) {
            // Nothing is contiguous: convert row by row.
            for (int64_t r = 0; r < valid; ++r) {
              const uint64_t* src = base + r * rs;
              for (int l = 0; l < limbs; ++l) {
                double* dst = panel + l * limb_stride + r * kc;
                const int shift = l * lb;
                for (int64_t p = 0; p < kc; ++p) {
                  dst[p] = limb_to_double((src[p * cs] >> shift) & limb_mask);
                }
              }
            }
          } else {
            // W is a transposed view (columns contiguous): walk each column.
            for (int64_t p = 0; p < kc; ++p) {
              const uint64_t* src = base + p * cs;
              for (int64_t r = 0; r < valid; ++r) {
                for (int l = 0; l < limbs; ++l) {
                  panel[l * limb_stride + r * kc + p] =
                      limb_to_double((src[r] >> (l * lb)) & limb_mask);
                }
              }
            }
          }
        }
        // All limbs of one output tile, recombined in registers/L1 and written once
        // (stored on the first k-block, added on later ones): the output is the
        // largest operand here, so it is touched once per k-block instead of
        // zeroed and then read-modified-written once per limb.
        const bool first_k_block = pc == 0;
        for (int64_t jp = 0; jp < npanels; ++jp) {
          const int64_t cols = std::min<int64_t>(Kernel::NR, nc - jp * Kernel::NR);
          for (int64_t ip = 0; ip < mpanels; ++ip) {
            const int64_t rows = std::min<int64_t>(Kernel::MR, mc - ip * Kernel::MR);
            for (int l = 0; l < limbs; ++l) {
              Kernel::run(kc, Ap.data() + l * limb_stride + ip * kc * Kernel::MR,
                          Bp.data() + jp * kc * Kernel::NR, tile);
              const int shift = l * lb;
              if (l == 0) {
                for (int t = 0; t < Kernel::MR * Kernel::NR; ++t)
                  acc[t] = static_cast<uint64_t>(tile[t]);
              } else {
                for (int t = 0; t < Kernel::MR * Kernel::NR; ++t)
                  acc[t] += static_cast<uint64_t>(tile[t]) << shift;
              }
            }
            uint64_t* corner = &g.C.at(ic + ip * Kernel::MR, jc + jp * Kernel::NR);
            const int64_t crs = g.C.row_stride;
            const int64_t ccs = g.C.col_stride;
            if (crs == 1 && ccs != 1) {  // transposed output: walk its columns
              for (int64_t c = 0; c < cols; ++c) {
                uint64_t* out = corner + c * ccs;
                if (first_k_block) {
                  for (int64_t r = 0; r < rows; ++r) out[r] = acc[r * Kernel::NR + c];
                } else {
                  for (int64_t r = 0; r < rows; ++r) out[r] += acc[r * Kernel::NR + c];
                }
              }
            } else {
              for (int64_t r = 0; r < rows; ++r) {
                uint64_t* out = corner + r * crs;
                if (first_k_block) {
                  for (int64_t c = 0; c < cols; ++c) out[c * ccs] = acc[r * Kernel::NR + c];
                } else {
                  for (int64_t c = 0; c < cols; ++c) out[c * ccs] += acc[r * Kernel::NR + c];
                }
              }
            }
          }
        }
      }
    }
  }
}

template <class Kernel>
void gemm_driver(View2D<const uint64_t> W, View2D<const int64_t> S, View2D<uint64_t> C,
                 int threads) {
  // Matrix-vector shapes are bandwidth-bound: wrapping multiplies into register
  // accumulators read W once, while the float64 path would pad panels and
  // convert limbs.
  static_assert(Kernel::kNarrowMaxCols <= kNarrowCols, "the narrow path's widest S");
  if (C.cols <= Kernel::kNarrowMaxCols) {
    gemm_narrow<Kernel>(W, S, C, threads);
    return;
  }
  if (C.rows <= 2) {
    gemm_wide_small_scalar(W, S, C, threads);
    return;
  }
  const uint64_t smax = max_abs(S);
  const LimbPlan plan = plan_limbs(smax, W.cols, 256);
  if (plan.limbs == 0) {  // small operand too large for exact float64 limbs
    gemm_wide_small_scalar(W, S, C, threads);
    return;
  }
  const Block g{W, S, C, plan};
  const int64_t m = C.rows;
  const int64_t n = C.cols;
  if (m >= n || m >= 2 * Kernel::MR * threads) {
    parallel_for(m, threads, Kernel::MR,
                 [&](int64_t a, int64_t b) { gemm_region<Kernel>(g, a, b, 0, n); });
  } else {
    parallel_for(n, threads, Kernel::NR,
                 [&](int64_t a, int64_t b) { gemm_region<Kernel>(g, 0, m, a, b); });
  }
}

}  // namespace cf
