// Shared planning for the exact split-limb floating-point GEMM used by the
// SIMD paths: a uint64 operand is cut into `limbs` limbs of `limb_bits` bits,
// each limb times the small operand is an integer product that float64
// computes exactly as long as every partial sum stays below 2^51 in
// magnitude (the conversion back to int64 uses the 1.5 * 2^52 trick).
#pragma once

#include <algorithm>
#include <cstdint>

#include "he/kernels.hpp"

namespace cf {

struct LimbPlan {
  int limbs = 0;      // number of limbs; 0 means "use the scalar path"
  int limb_bits = 0;  // bits per limb
  int64_t kc = 0;     // k-block length that keeps partial sums < 2^51
};

/// Bits needed to hold |x| (0 for x == 0).
inline int magnitude_bits(uint64_t x) { return x == 0 ? 0 : 64 - __builtin_clzll(x); }

inline uint64_t max_abs(View2D<const int64_t> S) {
  uint64_t m = 0;
  for (int64_t r = 0; r < S.rows; ++r) {
    for (int64_t c = 0; c < S.cols; ++c) {
      const int64_t v = S.at(r, c);
      const uint64_t a = v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
      m = std::max(m, a);
    }
  }
  return m;
}

/// Chooses the fewest limbs whose exact k-block is at least `min_kc` long.
inline LimbPlan plan_limbs(uint64_t small_max, int64_t k, int64_t preferred_kc) {
  const int sb = magnitude_bits(small_max);
  for (int limbs = 2; limbs <= 4; ++limbs) {
    const int lb = (64 + limbs - 1) / limbs;
    const int budget = 51 - lb - sb;  // log2 of the longest exact k-block
    if (budget < 0) continue;
    const int64_t kc_max = budget >= 40 ? (int64_t{1} << 40) : (int64_t{1} << budget);
    const int64_t kc = std::min<int64_t>({kc_max, preferred_kc, std::max<int64_t>(k, 1)});
    if (kc >= std::min<int64_t>(64, std::max<int64_t>(k, 1))) return {limbs, lb, kc};
  }
  return {};
}

}  // namespace cf
