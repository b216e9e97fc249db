// The key-switch driver shared by every ISA: out = M * decompose(c) mod 2^64.
//
// M (rows x n*l, row-major) is streamed exactly once. The digits of c are
// produced chunk by chunk into a small per-thread buffer (no n*l temporary),
// and the per-ISA `Dot` kernel accumulates up to four rows at a time over a
// contiguous run of digits. Digits of the `skip_low` least significant
// positions of every word are known to be zero (e.g. the low 64 - tau bits of
// w*x in the paper's Eq. 6 encryption) and their columns are not read at all.
// Work is split over rows when there are enough of them, otherwise over
// source words with per-thread partial sums (addition mod 2^64 is exact in
// any order, so the result does not depend on the split).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "he/kernels.hpp"
#include "he/parallel.hpp"

namespace cf {

constexpr int64_t kKeyswitchChunkWords = 256;

/// Dot must provide:
///   static void prepare(uint64_t* digits, int64_t len)   // e.g. 0/1 -> masks
///   static void dot4(const uint64_t* const m[4], const uint64_t* d, int64_t len,
///                    uint64_t acc[4])                     // acc[r] += m[r] . d
///   static void dot2(const uint64_t* const m[2], const uint64_t* d, int64_t len,
///                    uint64_t acc[2])
///   static void dot1(const uint64_t* m, const uint64_t* d, int64_t len, uint64_t& acc)
///   static void decompose(const uint64_t* c, int64_t n, int base_bits, uint64_t* out)
template <class Dot>
void keyswitch_driver(const uint64_t* M, int64_t rows, int64_t n, int base_bits, int skip_low,
                      const uint64_t* c, uint64_t* out, int threads) {
  const int l = digit_count(base_bits);
  if (skip_low < 0 || skip_low > l) {
    throw KernelArgumentError("keyswitch: skip_low_digits must be in [0, digits]");
  }
  const int live = l - skip_low;
  const int64_t cols = n * l;
  if (skip_low > 0) {
    const int zero_bits = std::min(64, skip_low * base_bits);
    const uint64_t low_mask = zero_bits >= 64 ? ~uint64_t{0} : ((uint64_t{1} << zero_bits) - 1);
    for (int64_t i = 0; i < n; ++i) {
      if ((c[i] & low_mask) != 0) {
        throw KernelArgumentError(
            "keyswitch: skip_low_digits is set but a word has non-zero low digits");
      }
    }
  }
  // Accumulates rows [r0, r1) over source words [w0, w1) into acc (r1 - r0 entries).
  auto work = [&](int64_t r0, int64_t r1, int64_t w0, int64_t w1, uint64_t* acc) {
    std::vector<uint64_t> buf(static_cast<size_t>(kKeyswitchChunkWords * l));
    for (int64_t wc = w0; wc < w1; wc += kKeyswitchChunkWords) {
      const int64_t words = std::min(kKeyswitchChunkWords, w1 - wc);
      Dot::decompose(c + wc, words, base_bits, buf.data());
      Dot::prepare(buf.data(), words * l);
      int64_t r = r0;
      for (; r + 4 <= r1; r += 4) {
        uint64_t a4[4] = {0, 0, 0, 0};
        const uint64_t* base[4] = {M + r * cols, M + (r + 1) * cols, M + (r + 2) * cols,
                                   M + (r + 3) * cols};
        if (live == l) {
          const uint64_t* m4[4] = {base[0] + wc * l, base[1] + wc * l, base[2] + wc * l,
                                   base[3] + wc * l};
          Dot::dot4(m4, buf.data(), words * l, a4);
        } else {
          for (int64_t i = 0; i < words; ++i) {
            const int64_t off = (wc + i) * l;
            const uint64_t* m4[4] = {base[0] + off, base[1] + off, base[2] + off, base[3] + off};
            Dot::dot4(m4, buf.data() + i * l, live, a4);
          }
        }
        for (int q = 0; q < 4; ++q) acc[r - r0 + q] += a4[q];
      }
      for (; r + 2 <= r1; r += 2) {
        uint64_t a2[2] = {0, 0};
        const uint64_t* base[2] = {M + r * cols, M + (r + 1) * cols};
        if (live == l) {
          const uint64_t* m2[2] = {base[0] + wc * l, base[1] + wc * l};
          Dot::dot2(m2, buf.data(), words * l, a2);
        } else {
          for (int64_t i = 0; i < words; ++i) {
            const int64_t off = (wc + i) * l;
            const uint64_t* m2[2] = {base[0] + off, base[1] + off};
            Dot::dot2(m2, buf.data() + i * l, live, a2);
          }
        }
        acc[r - r0] += a2[0];
        acc[r - r0 + 1] += a2[1];
      }
      for (; r < r1; ++r) {
        uint64_t a = 0;
        const uint64_t* row = M + r * cols;
        if (live == l) {
          Dot::dot1(row + wc * l, buf.data(), words * l, a);
        } else {
          for (int64_t i = 0; i < words; ++i) {
            Dot::dot1(row + (wc + i) * l, buf.data() + i * l, live, a);
          }
        }
        acc[r - r0] += a;
      }
    }
  };
  if (threads < 1) threads = default_threads();
  if (rows >= 8 * static_cast<int64_t>(threads) || n < 2 * kKeyswitchChunkWords) {
    parallel_for(rows, threads, 4, [&](int64_t r0, int64_t r1) {
      std::vector<uint64_t> acc(static_cast<size_t>(r1 - r0), 0);
      work(r0, r1, 0, n, acc.data());
      std::copy(acc.begin(), acc.end(), out + r0);
    });
    return;
  }
  // Few rows, many words: split the words, then reduce the partial sums.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(threads, n / kKeyswitchChunkWords));
  std::vector<uint64_t> partial(static_cast<size_t>(parts * rows), 0);
  const int64_t per = (n + parts - 1) / parts;
  parallel_for(parts, static_cast<int>(parts), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t w0 = p * per;
      const int64_t w1 = std::min(n, w0 + per);
      if (w0 < w1) work(0, rows, w0, w1, partial.data() + p * rows);
    }
  });
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t s = 0;
    for (int64_t p = 0; p < parts; ++p) s += partial[static_cast<size_t>(p * rows + r)];
    out[r] = s;
  }
}

/// The digit policy shared by the SIMD Dot kernels: base-2 digits (kMask) are
/// turned into all-zero/all-one masks so a product becomes an AND.
template <bool kMask>
struct DigitTerm {
  static void prepare(uint64_t* d, int64_t len) {
    if constexpr (kMask) {
      for (int64_t j = 0; j < len; ++j) d[j] = uint64_t{0} - d[j];
    }
  }
  static uint64_t scalar_term(uint64_t m, uint64_t d) {
    if constexpr (kMask) {
      return m & d;
    } else {
      return m * d;
    }
  }
};

}  // namespace cf
