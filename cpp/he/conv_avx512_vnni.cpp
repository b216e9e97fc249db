// AVX-512 VNNI direct convolution (conv.hpp), for images with |x| < 2^15:
// x is an int16 and every kernel word is cut into four signed 16-bit digits
// d_0..d_3 (word = sum d_i 2^(16 i) mod 2^64, d_i in [-2^15, 2^15)). One
// vpdpwssd multiplies two taps of 16 words' digit d by two taps of x and adds
// both products to 16 int32 sums: twice the multiply-accumulates per
// instruction of the float64 FMA kernel. Taps are summed in blocks short
// enough that every int32 sum is exact (2 * pairs * 2^15 * max|x| < 2^31);
// each block's sums are sign-extended, shifted by 16 i and added mod 2^64.
// The driver is the float64 one's (conv_driver.hpp): patches of 6 output
// pixels per block from a zero-padded int16 copy of the image, finished words
// written straight into the NHWC output. Bit-identical to conv_direct_scalar
// (tested).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "he/conv_driver.hpp"

namespace cf {

namespace {

constexpr int kMR = 6;      // output pixels per block
constexpr int kWords = 16;  // words per column block (one int32 lane each)
constexpr int kDigits = 4;  // signed 16-bit digits per word

inline uint32_t pair16(int16_t lo, int16_t hi) {
  return static_cast<uint32_t>(static_cast<uint16_t>(lo)) |
         (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16);
}

inline int32_t load_pair(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// acc += the pairwise int16 products of a and b, in place. (GCC 12 compiles the
// _mm512_dpwssd_epi32 intrinsic in this loop with a register copy and a stack
// store per instruction; the asm keeps the 24 accumulators in registers.)
inline __m512i dpwssd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

// Sign-extends the 16 int32 sums of digit D to int64 and shifts them into place.
template <int D>
inline void widen_add(__m512i acc, __m512i& lo, __m512i& hi) {
  const __m512i l = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(acc));
  const __m512i h = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(acc, 1));
  lo = _mm512_add_epi64(lo, _mm512_slli_epi64(l, 16 * D));
  hi = _mm512_add_epi64(hi, _mm512_slli_epi64(h, 16 * D));
}

// Pairs [q0, q1) of 6 pixels x 16 words; adds the result to `base` (the bias or the
// words so far) and stores it to dst rows (ldd apart), `cols` words of each.
void run_block(const int16_t* A, int64_t lda, const int32_t* B, int64_t q0, int64_t q1,
               const uint64_t* bias, uint64_t* dst, int64_t ldd, int64_t rows, int64_t cols) {
  __m512i acc[kMR][kDigits];
  for (int r = 0; r < kMR; ++r)
    for (int d = 0; d < kDigits; ++d) acc[r][d] = _mm512_setzero_si512();
  for (int64_t q = q0; q < q1; ++q) {
    const int32_t* b = B + q * kDigits * kWords;
    const __m512i b0 = _mm512_loadu_si512(b);
    const __m512i b1 = _mm512_loadu_si512(b + kWords);
    const __m512i b2 = _mm512_loadu_si512(b + 2 * kWords);
    const __m512i b3 = _mm512_loadu_si512(b + 3 * kWords);
    for (int r = 0; r < kMR; ++r) {
      const __m512i a = _mm512_set1_epi32(load_pair(A + r * lda + 2 * q));
      acc[r][0] = dpwssd(acc[r][0], a, b0);
      acc[r][1] = dpwssd(acc[r][1], a, b1);
      acc[r][2] = dpwssd(acc[r][2], a, b2);
      acc[r][3] = dpwssd(acc[r][3], a, b3);
    }
  }
  const __mmask8 mlo = static_cast<__mmask8>(cols >= 8 ? 0xff : (1u << cols) - 1);
  const __mmask8 mhi = static_cast<__mmask8>(cols >= 16 ? 0xff
                                             : cols > 8 ? (1u << (cols - 8)) - 1
                                                        : 0);
  for (int r = 0; r < kMR; ++r) {
    if (r >= rows) break;
    uint64_t* d = dst + r * ldd;
    __m512i lo, hi;
    if (bias) {
      lo = _mm512_loadu_si512(bias);
      hi = _mm512_loadu_si512(bias + 8);
    } else {
      lo = _mm512_maskz_loadu_epi64(mlo, d);
      hi = _mm512_maskz_loadu_epi64(mhi, d + 8);
    }
    widen_add<0>(acc[r][0], lo, hi);
    widen_add<1>(acc[r][1], lo, hi);
    widen_add<2>(acc[r][2], lo, hi);
    widen_add<3>(acc[r][3], lo, hi);
    _mm512_mask_storeu_epi64(d, mlo, lo);
    _mm512_mask_storeu_epi64(d + 8, mhi, hi);
  }
}

}  // namespace

bool avx512_vnni_available() {
  __builtin_cpu_init();
  return isa_available(Isa::Avx512) && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
}

void conv_direct_avx512_vnni(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                             const uint64_t* bias, uint64_t* out, int threads) {
  const uint64_t xmax = conv_max_abs(s, x);
  if (xmax >= (uint64_t{1} << 15)) {
    throw KernelArgumentError("conv_direct_avx512_vnni: needs |x| < 2^15");
  }
  const int64_t taps = s.kh * s.kw * s.c;
  const int64_t pairs = (taps + 1) / 2;
  const int64_t lda = 2 * pairs;
  const int64_t f = s.f;
  const int64_t col_blocks = (f + kWords - 1) / kWords;
  // Tap pairs per block: 2 * block * 2^15 * xmax < 2^31.
  const int64_t block = xmax == 0
                            ? pairs
                            : std::max<int64_t>(1, ((int64_t{1} << 31) - 1) / (int64_t{1} << 16) /
                                                       static_cast<int64_t>(xmax));
  // B[((jb * pairs + q) * 4 + d) * 16 + lane] = digit d of taps 2q, 2q + 1 of word jb * 16 + lane.
  std::vector<int32_t> B(static_cast<size_t>(col_blocks * pairs * kDigits * kWords), 0);
  for (int64_t p = 0; p < taps; ++p) {
    for (int64_t col = 0; col < f; ++col) {
      uint64_t w = kern[p * f + col];
      const int64_t jb = col / kWords;
      const int64_t lane = col % kWords;
      for (int d = 0; d < kDigits; ++d) {
        const auto digit = static_cast<int16_t>(static_cast<uint16_t>(w & 0xffffu));
        w = (w - static_cast<uint64_t>(static_cast<int64_t>(digit))) >> 16;
        int32_t& slot =
            B[static_cast<size_t>(((jb * pairs + p / 2) * kDigits + d) * kWords + lane)];
        const auto prev = static_cast<uint32_t>(slot);
        const uint32_t mine = p % 2 == 0 ? pair16(digit, 0) : pair16(0, digit);
        slot = static_cast<int32_t>(prev | mine);
      }
    }
  }
  std::vector<uint64_t> biasp(static_cast<size_t>(col_blocks * kWords), 0);
  if (bias) std::copy(bias, bias + f, biasp.begin());
  parallel_for(s.n * s.out_h * s.out_w, threads, kMR, [&](int64_t p0, int64_t p1) {
    PatchPacker<kMR, int16_t> packer(s, x, lda);
    std::vector<int16_t> A(static_cast<size_t>(kMR * lda));
    for (int64_t pb = p0; pb < p1; pb += kMR) {
      const int64_t rows = std::min<int64_t>(kMR, p1 - pb);
      packer.pack(pb, rows, A.data());
      for (int64_t jb = 0; jb < col_blocks; ++jb) {
        const int32_t* panel = B.data() + jb * pairs * kDigits * kWords;
        uint64_t* dst = out + pb * f + jb * kWords;
        const int64_t cols = std::min<int64_t>(kWords, f - jb * kWords);
        for (int64_t q0 = 0; q0 < pairs; q0 += block) {
          run_block(A.data(), lda, panel, q0, std::min(pairs, q0 + block),
                    q0 == 0 ? biasp.data() + jb * kWords : nullptr, dst, f, rows, cols);
        }
      }
    }
  });
}

}  // namespace cf
