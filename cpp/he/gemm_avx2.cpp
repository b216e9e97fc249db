// AVX2 + FMA GEMM: C = W * S mod 2^64, exact, via split-limb float64 products.
//
// W (m x k, uint64) is cut into 2-4 limbs; each limb times S (k x n, small
// signed integers) is computed in float64 with a 6x8 register-blocked FMA
// micro-kernel over k-blocks short enough that every partial sum is an exact
// integer below 2^51; the block results are converted back to int64, shifted
// into place and accumulated with wrapping uint64 adds. Bit-identical to
// gemm_wide_small_scalar (tested).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "he/gemm_plan.hpp"
#include "he/kernels.hpp"
#include "he/parallel.hpp"

namespace cf {

namespace {

constexpr int MR = 6;
constexpr int NR = 8;
constexpr int64_t MC = 96;
constexpr int64_t NC = 512;
constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52

// acc[MR][NR] = sum_p A[p*MR + r] * B[p*NR + c], written as exact int64.
inline void micro_kernel(int64_t kc, const double* A, const double* B, int64_t* out) {
  __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
  __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
  __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
  __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
  __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
  __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256d b0 = _mm256_loadu_pd(B);
    const __m256d b1 = _mm256_loadu_pd(B + 4);
    __m256d a = _mm256_broadcast_sd(A + 0);
    c00 = _mm256_fmadd_pd(a, b0, c00);
    c01 = _mm256_fmadd_pd(a, b1, c01);
    a = _mm256_broadcast_sd(A + 1);
    c10 = _mm256_fmadd_pd(a, b0, c10);
    c11 = _mm256_fmadd_pd(a, b1, c11);
    a = _mm256_broadcast_sd(A + 2);
    c20 = _mm256_fmadd_pd(a, b0, c20);
    c21 = _mm256_fmadd_pd(a, b1, c21);
    a = _mm256_broadcast_sd(A + 3);
    c30 = _mm256_fmadd_pd(a, b0, c30);
    c31 = _mm256_fmadd_pd(a, b1, c31);
    a = _mm256_broadcast_sd(A + 4);
    c40 = _mm256_fmadd_pd(a, b0, c40);
    c41 = _mm256_fmadd_pd(a, b1, c41);
    a = _mm256_broadcast_sd(A + 5);
    c50 = _mm256_fmadd_pd(a, b0, c50);
    c51 = _mm256_fmadd_pd(a, b1, c51);
    A += MR;
    B += NR;
  }
  const __m256d magic = _mm256_set1_pd(kMagic);
  const __m256i magic_bits = _mm256_castpd_si256(magic);
  auto store = [&](int64_t* dst, __m256d v) {
    const __m256i bits = _mm256_castpd_si256(_mm256_add_pd(v, magic));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_sub_epi64(bits, magic_bits));
  };
  store(out + 0 * NR, c00);
  store(out + 0 * NR + 4, c01);
  store(out + 1 * NR, c10);
  store(out + 1 * NR + 4, c11);
  store(out + 2 * NR, c20);
  store(out + 2 * NR + 4, c21);
  store(out + 3 * NR, c30);
  store(out + 3 * NR + 4, c31);
  store(out + 4 * NR, c40);
  store(out + 4 * NR + 4, c41);
  store(out + 5 * NR, c50);
  store(out + 5 * NR + 4, c51);
}

struct Block {
  View2D<const uint64_t> W;
  View2D<const int64_t> S;
  View2D<uint64_t> C;
  LimbPlan plan;
};

// Computes rows [r0, r1) x cols [c0, c1) of C.
void gemm_region(const Block& g, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  const int64_t k = g.W.cols;
  const int limbs = g.plan.limbs;
  const int lb = g.plan.limb_bits;
  const int64_t kc_max = g.plan.kc;
  const uint64_t limb_mask = lb >= 64 ? ~uint64_t{0} : ((uint64_t{1} << lb) - 1);

  for (int64_t i = r0; i < r1; ++i)
    for (int64_t j = c0; j < c1; ++j) g.C.at(i, j) = 0;
  if (k == 0) return;

  std::vector<double> Bp(static_cast<size_t>(kc_max * ((std::min(NC, c1 - c0) + NR - 1) / NR * NR)));
  std::vector<double> Ap(static_cast<size_t>(limbs * kc_max * ((std::min(MC, r1 - r0) + MR - 1) / MR * MR)));
  alignas(32) int64_t tile[MR * NR];

  for (int64_t jc = c0; jc < c1; jc += NC) {
    const int64_t nc = std::min(NC, c1 - jc);
    const int64_t npanels = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < k; pc += kc_max) {
      const int64_t kc = std::min(kc_max, k - pc);
      // Pack S[pc:pc+kc, jc:jc+nc] into NR-wide panels (zero padded).
      for (int64_t jp = 0; jp < npanels; ++jp) {
        double* dst = Bp.data() + jp * kc * NR;
        for (int64_t p = 0; p < kc; ++p) {
          for (int c = 0; c < NR; ++c) {
            const int64_t col = jc + jp * NR + c;
            dst[p * NR + c] = col < jc + nc ? static_cast<double>(g.S.at(pc + p, col)) : 0.0;
          }
        }
      }
      for (int64_t ic = r0; ic < r1; ic += MC) {
        const int64_t mc = std::min(MC, r1 - ic);
        const int64_t mpanels = (mc + MR - 1) / MR;
        const int64_t limb_stride = mpanels * kc * MR;
        // Pack every limb of W[ic:ic+mc, pc:pc+kc] into MR-tall panels.
        // Limbs are < 2^32, so the int64 -> double conversion is exact.
        for (int64_t ip = 0; ip < mpanels; ++ip) {
          double* panel = Ap.data() + ip * kc * MR;
          for (int r = 0; r < MR; ++r) {
            const int64_t row = ic + ip * MR + r;
            if (row >= ic + mc) {
              for (int l = 0; l < limbs; ++l)
                for (int64_t p = 0; p < kc; ++p) panel[l * limb_stride + p * MR + r] = 0.0;
              continue;
            }
            const uint64_t* src = &g.W.at(row, pc);
            const int64_t cs = g.W.col_stride;
            for (int64_t p = 0; p < kc; ++p) {
              const uint64_t w = src[p * cs];
              double* dst = panel + p * MR + r;
              for (int l = 0; l < limbs; ++l) {
                dst[l * limb_stride] =
                    static_cast<double>(static_cast<int64_t>((w >> (l * lb)) & limb_mask));
              }
            }
          }
        }
        for (int l = 0; l < limbs; ++l) {
          const int shift = l * lb;
          for (int64_t jp = 0; jp < npanels; ++jp) {
            const int64_t cols = std::min<int64_t>(NR, nc - jp * NR);
            for (int64_t ip = 0; ip < mpanels; ++ip) {
              const int64_t rows = std::min<int64_t>(MR, mc - ip * MR);
              micro_kernel(kc, Ap.data() + l * limb_stride + ip * kc * MR,
                           Bp.data() + jp * kc * NR, tile);
              for (int64_t r = 0; r < rows; ++r) {
                for (int64_t c = 0; c < cols; ++c) {
                  g.C.at(ic + ip * MR + r, jc + jp * NR + c) +=
                      static_cast<uint64_t>(tile[r * NR + c]) << shift;
                }
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace

void gemm_wide_small_avx2(View2D<const uint64_t> W, View2D<const int64_t> S,
                          View2D<uint64_t> C, int threads) {
  // Matrix-vector shapes are bandwidth-bound: the scalar wrapping multiply
  // reads W once, while the float64 path would pad panels and convert limbs.
  if (C.cols <= 4 || C.rows <= 2) {
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
  if (m >= n || m >= 2 * MR * threads) {
    parallel_for(m, threads, MR, [&](int64_t a, int64_t b) { gemm_region(g, a, b, 0, n); });
  } else {
    parallel_for(n, threads, NR, [&](int64_t a, int64_t b) { gemm_region(g, 0, m, a, b); });
  }
}

}  // namespace cf
