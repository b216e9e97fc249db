// The cache-blocked ring GEMM driver shared by every ISA: C = A * B mod 2^64.
//
// GotoBLAS-style blocking: B (k x n) is packed once into NR-column panels per
// KC-deep block, contiguous per panel (a micro-panel of KC x NR words stays in
// L1 while the rows of A stream past it); each worker packs its MC-row block of
// A into MR-row panels per KC block (one stream into the micro-kernel) and
// visits every column panel. Workers split the rows of C (parallel_for); B's
// packed copy is shared read-only. Edge tiles (rows < MR or columns < NR) are
// computed into a local tile against zero-padded panels and copied out.
//
// A Kernel provides MR, NR and
//   static void run(int64_t kc, const uint64_t* Ap, const uint64_t* Bp,
//                   uint64_t* C, int64_t ldc, bool accumulate)
// with C[r*ldc + c] (accumulate ? += : =) sum_p Ap[p*MR + r] * Bp[p*NR + c]
// mod 2^64 for r < MR, c < NR.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "he/parallel.hpp"

namespace cf {
namespace mpc {

constexpr int64_t kRingKC = 128;  // KC x NR x 8 bytes = 16 KiB at NR = 16 (L1)
constexpr int64_t kRingMC = 192;  // MC x KC x 8 bytes = 192 KiB (L2)
// Least work per thread (products; ~0.1 ms at 10 GMAC/s) and least words of B
// per packing thread, so that small products do not pay for thread starts.
constexpr int64_t kRingMinMacsPerThread = int64_t{1} << 20;
constexpr int64_t kRingMinPackPerThread = int64_t{1} << 16;

// Pack the NR-column panels [j0, j1) of B (k x n, row-major) into Bp: block p0
// (depth kc = min(KC, k - p0)) at p0 * npad, panel jp of it at jp * kc * NR,
// element (p, c) at p * NR + c; columns past n are zero.
template <class Kernel>
inline void ring_pack_b(const uint64_t* B, int64_t k, int64_t n, uint64_t* Bp, int64_t j0,
                        int64_t j1) {
  constexpr int64_t NR = Kernel::NR;
  const int64_t npad = (n + NR - 1) / NR * NR;
  for (int64_t p0 = 0; p0 < k; p0 += kRingKC) {
    const int64_t kc = std::min(kRingKC, k - p0);
    for (int64_t jp = j0; jp < j1; ++jp) {
      uint64_t* dst = Bp + p0 * npad + jp * kc * NR;
      const int64_t cols = std::min(NR, n - jp * NR);
      for (int64_t p = 0; p < kc; ++p) {
        const uint64_t* src = B + (p0 + p) * n + jp * NR;
        for (int64_t c = 0; c < cols; ++c) dst[p * NR + c] = src[c];
        for (int64_t c = cols; c < NR; ++c) dst[p * NR + c] = 0;
      }
    }
  }
}

// One macro block: the MR-row panels of a packed (mc x kc) block of A (Ap) times
// every NR-column panel of B's packed kc-deep block (Bblock), into the mc rows of
// C from Cblock (row stride n): C (accumulate ? += : =) A * B mod 2^64. Edge tiles
// go through `tile` (MR * NR words) and are copied out.
template <class Kernel>
inline void ring_macro_block(const uint64_t* Ap, const uint64_t* Bblock, uint64_t* Cblock,
                             int64_t mc, int64_t kc, int64_t n, bool accumulate, uint64_t* tile) {
  constexpr int64_t MR = Kernel::MR;
  constexpr int64_t NR = Kernel::NR;
  const int64_t panels = (n + NR - 1) / NR;
  const int64_t rpanels = (mc + MR - 1) / MR;
  for (int64_t jp = 0; jp < panels; ++jp) {
    const uint64_t* bp = Bblock + jp * kc * NR;
    const int64_t cols = std::min(NR, n - jp * NR);
    for (int64_t ip = 0; ip < rpanels; ++ip) {
      const uint64_t* ap = Ap + ip * kc * MR;
      const int64_t rows = std::min(MR, mc - ip * MR);
      uint64_t* c = Cblock + ip * MR * n + jp * NR;
      if (rows == MR && cols == NR) {
        Kernel::run(kc, ap, bp, c, n, accumulate);
        continue;
      }
      Kernel::run(kc, ap, bp, tile, NR, false);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t q = 0; q < cols; ++q)
          c[r * n + q] = accumulate ? c[r * n + q] + tile[r * NR + q] : tile[r * NR + q];
    }
  }
}

template <class Kernel>
void ring_gemm_driver(const uint64_t* A, const uint64_t* B, uint64_t* C, int64_t m, int64_t k,
                      int64_t n, int threads) {
  constexpr int64_t MR = Kernel::MR;
  constexpr int64_t NR = Kernel::NR;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(C, C + m * n, uint64_t{0});
    return;
  }
  const int64_t panels = (n + NR - 1) / NR;
  const int64_t npad = panels * NR;

  // Packed B: block p0 (depth kc) starts at p0 * npad; panel jp of it at
  // jp * kc * NR, element (p, c) at p * NR + c. Columns past n are zero.
  std::vector<uint64_t> Bp(static_cast<size_t>(k * npad));
  const int pack_threads = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(threads, k * npad / kRingMinPackPerThread)));
  parallel_for(panels, pack_threads, 1,
               [&](int64_t j0, int64_t j1) { ring_pack_b<Kernel>(B, k, n, Bp.data(), j0, j1); });

  // Row chunks: multiples of MR, each at least kRingMinMacsPerThread products.
  const int64_t min_rows = (kRingMinMacsPerThread / (k * n) + MR - 1) / MR * MR;
  parallel_for(m, threads, std::max<int64_t>(MR, min_rows), [&](int64_t r0, int64_t r1) {
    std::vector<uint64_t> Ap(static_cast<size_t>((kRingMC + MR - 1) / MR * MR * kRingKC));
    alignas(64) uint64_t tile[Kernel::MR * Kernel::NR];
    for (int64_t ic = r0; ic < r1; ic += kRingMC) {
      const int64_t mc = std::min(kRingMC, r1 - ic);
      const int64_t rpanels = (mc + MR - 1) / MR;
      for (int64_t p0 = 0; p0 < k; p0 += kRingKC) {
        const int64_t kc = std::min(kRingKC, k - p0);
        // Pack A[ic .. ic+mc, p0 .. p0+kc) into MR-row panels (rows past mc zero).
        for (int64_t ip = 0; ip < rpanels; ++ip) {
          uint64_t* dst = Ap.data() + ip * kc * MR;
          const int64_t rows = std::min(MR, mc - ip * MR);
          for (int64_t r = 0; r < rows; ++r) {
            const uint64_t* src = A + (ic + ip * MR + r) * k + p0;
            for (int64_t p = 0; p < kc; ++p) dst[p * MR + r] = src[p];
          }
          for (int64_t r = rows; r < MR; ++r)
            for (int64_t p = 0; p < kc; ++p) dst[p * MR + r] = 0;
        }
        ring_macro_block<Kernel>(Ap.data(), Bp.data() + p0 * npad, C + ic * n, mc, kc, n, p0 > 0,
                                 tile);
      }
    }
  });
}

}  // namespace mpc
}  // namespace cf
