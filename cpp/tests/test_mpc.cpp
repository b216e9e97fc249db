// C++ unit tests of the 3PC share kernels (cpp/mpc/): every kernel against a
// naive reference written here, every SIMD path bit for bit against the scalar
// one, on odd sizes, block and lane tails and bits < 64. Built and run by
// ctest, also under AddressSanitizer + UndefinedBehaviorSanitizer and, for the
// NEON paths, under qemu-aarch64.
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "mpc/kernels.hpp"
#include "tests/check.hpp"

namespace {

using cf::Isa;
using cf_test::available_isas;
using cf_test::throws_argument_error;
using Words = std::vector<uint64_t>;

// Uniform words mixed with edge values (0, 1, 2^32 - 1, 2^63, 2^64 - 1).
Words random_words(std::mt19937_64& rng, int64_t count) {
  static const uint64_t kEdges[] = {0, 1, 0xFFFFFFFFULL, 0x100000000ULL, 1ULL << 63, ~0ULL};
  Words w(static_cast<size_t>(count));
  for (auto& v : w) {
    const uint64_t r = rng();
    v = (r & 7) == 0 ? kEdges[(r >> 3) % 6] : rng();
  }
  return w;
}

// ------------------------------------------------------------------ ring GEMM

Words naive_gemm(const Words& A, const Words& B, int64_t m, int64_t k, int64_t n) {
  Words C(static_cast<size_t>(m * n), 0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      uint64_t s = 0;
      for (int64_t p = 0; p < k; ++p) s += A[i * k + p] * B[p * n + j];
      C[i * n + j] = s;
    }
  return C;
}

void test_ring_gemm() {
  std::mt19937_64 rng(20);
  // Odd sizes, tiles smaller than every MR x NR, and sizes across the KC (128)
  // and MC (192) block boundaries.
  const int64_t shapes[][3] = {{1, 1, 1},    {2, 3, 5},     {7, 5, 3},      {8, 16, 16},
                               {9, 17, 33},  {13, 129, 17}, {193, 130, 20}, {50, 257, 65},
                               {385, 40, 7}, {6, 300, 4},   {200, 300, 70}};  // last: 4 row chunks
  for (const auto& s : shapes) {
    const int64_t m = s[0], k = s[1], n = s[2];
    const Words A = random_words(rng, m * k), B = random_words(rng, k * n);
    const Words want = naive_gemm(A, B, m, k, n);
    for (Isa isa : available_isas()) {
      for (int threads : {1, 3}) {
        Words C(static_cast<size_t>(m * n), 0xDEADBEEFULL);
        cf::mpc::ring_gemm(isa, A.data(), B.data(), C.data(), m, k, n, threads);
        if (C != want)
          std::fprintf(stderr, "ring_gemm %s %lldx%lldx%lld threads=%d\n", cf::isa_name(isa),
                       static_cast<long long>(m), static_cast<long long>(k),
                       static_cast<long long>(n), threads);
        CHECK(C == want);
      }
    }
    if (cf::isa_available(Isa::Avx512)) {
      Words C(static_cast<size_t>(m * n), 1);
      cf::mpc::ring_gemm_variant(cf::mpc::GemmVariant::Avx512Split, Isa::Avx512, A.data(), B.data(),
                                 C.data(), m, k, n, 2);
      CHECK(C == want);
    }
  }
  // k = 0: the empty sum, C all zero (overwritten).
  for (Isa isa : available_isas()) {
    Words C(12, 7);
    cf::mpc::ring_gemm(isa, nullptr, nullptr, C.data(), 3, 0, 4, 2);
    CHECK(C == Words(12, 0));
    cf::mpc::ring_gemm(isa, nullptr, nullptr, nullptr, 0, 5, 0, 2);  // nothing to do
  }
  // Textbook value: (2^63 + 1) * 2 = 2 mod 2^64; 2^32 * 2^32 = 0.
  {
    const Words A = {(1ULL << 63) + 1, 1ULL << 32}, B = {2, 1ULL << 32};
    for (Isa isa : available_isas()) {
      Words C(1);
      cf::mpc::ring_gemm(isa, A.data(), B.data(), C.data(), 1, 2, 1, 1);
      CHECK(C[0] == 2);
    }
  }
  CHECK(throws_argument_error(
      [] { cf::mpc::ring_gemm(Isa::Scalar, nullptr, nullptr, nullptr, -1, 2, 2, 1); }));
  CHECK(throws_argument_error([] {
    cf::mpc::ring_gemm(Isa::Scalar, nullptr, nullptr, nullptr, int64_t{1} << 40, int64_t{1} << 40,
                       2, 1);
  }));
}

// ------------------------------------------------------------------ ring convolution

// The definition: out[i, oy, ox, f] = sum over taps inside the image of x * kern.
Words naive_conv(const cf::ConvShape& s, const Words& x, const Words& kern) {
  Words out(static_cast<size_t>(s.n * s.out_h * s.out_w * s.f), 0);
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t oy = 0; oy < s.out_h; ++oy)
      for (int64_t ox = 0; ox < s.out_w; ++ox)
        for (int64_t f = 0; f < s.f; ++f) {
          uint64_t acc = 0;
          for (int64_t ky = 0; ky < s.kh; ++ky)
            for (int64_t kx = 0; kx < s.kw; ++kx) {
              const int64_t iy = oy * s.stride_h - s.pad_top + ky;
              const int64_t ix = ox * s.stride_w - s.pad_left + kx;
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              for (int64_t c = 0; c < s.c; ++c)
                acc += x[((i * s.h + iy) * s.w + ix) * s.c + c] *
                       kern[((ky * s.kw + kx) * s.c + c) * s.f + f];
            }
          out[((i * s.out_h + oy) * s.out_w + ox) * s.f + f] = acc;
        }
  return out;
}

void test_ring_conv() {
  std::mt19937_64 rng(21);
  // n, h, w, c, kh, kw, f, stride_h, stride_w, pad_top, pad_left, out_h, out_w:
  // SAME 5x5 (the Case I second layer's geometry, small), VALID, strides, an even
  // kernel with asymmetric SAME padding, 1x1 (a dense layer), a 1-D conv (h = 1),
  // more than one KC block of taps (5 * 5 * 9 = 225 > 128), more than one MC block
  // of pixels (11 x 11 = 121 > 96), f across NR and past it.
  const cf::ConvShape shapes[] = {
      {3, 7, 7, 4, 5, 5, 16, 1, 1, 2, 2, 7, 7},    {2, 6, 5, 3, 3, 2, 5, 1, 1, 0, 0, 4, 4},
      {2, 9, 8, 2, 3, 3, 17, 2, 3, 1, 1, 5, 3},    {2, 7, 7, 5, 2, 2, 8, 1, 1, 0, 0, 7, 7},
      {4, 1, 1, 33, 1, 1, 20, 1, 1, 0, 0, 1, 1},   {3, 1, 10, 3, 1, 4, 6, 1, 1, 0, 1, 1, 10},
      {1, 11, 11, 9, 5, 5, 3, 1, 1, 2, 2, 11, 11}, {0, 4, 4, 2, 3, 3, 2, 1, 1, 1, 1, 4, 4},
      {2, 14, 14, 8, 5, 5, 33, 1, 1, 2, 2, 14, 14}};
  for (const auto& s : shapes) {
    const Words x = random_words(rng, s.n * s.h * s.w * s.c);
    const Words kern = random_words(rng, s.kh * s.kw * s.c * s.f);
    const Words want = naive_conv(s, x, kern);
    for (Isa isa : available_isas()) {
      for (int threads : {1, 3}) {
        Words out(want.size(), 0xDEADBEEFULL);
        cf::mpc::ring_conv(isa, s, x.data(), kern.data(), out.data(), threads);
        if (out != want)
          std::fprintf(stderr, "ring_conv %s n=%lld %lldx%lldx%lld k=%lldx%lld f=%lld threads=%d\n",
                       cf::isa_name(isa), static_cast<long long>(s.n), static_cast<long long>(s.h),
                       static_cast<long long>(s.w), static_cast<long long>(s.c),
                       static_cast<long long>(s.kh), static_cast<long long>(s.kw),
                       static_cast<long long>(s.f), threads);
        CHECK(out == want);
      }
    }
  }
  // Textbook value: one tap, (2^63 + 1) * 2 = 2 mod 2^64.
  {
    const cf::ConvShape s{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1};
    const Words x = {(1ULL << 63) + 1}, kern = {2};
    for (Isa isa : available_isas()) {
      Words out(1);
      cf::mpc::ring_conv(isa, s, x.data(), kern.data(), out.data(), 1);
      CHECK(out[0] == 2);
    }
  }
  uint64_t w[4] = {};
  const cf::ConvShape bad_pad{1, 4, 4, 1, 3, 3, 1, 1, 1, 3, 0, 4, 4};
  CHECK(throws_argument_error([&] { cf::mpc::ring_conv(Isa::Scalar, bad_pad, w, w, w, 1); }));
  const cf::ConvShape too_wide{1, 4, 4, 1, 3, 3, 1, 1, 1, 1, 1, 9, 4};
  CHECK(throws_argument_error([&] { cf::mpc::ring_conv(Isa::Scalar, too_wide, w, w, w, 1); }));
}

// ------------------------------------------------------------------ RSS local steps

void test_rss_local() {
  std::mt19937_64 rng(21);
  for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{7}, int64_t{8}, int64_t{9},
                        int64_t{33}, int64_t{70001}}) {
    const Words x0 = random_words(rng, count), x1 = random_words(rng, count),
                y0 = random_words(rng, count), y1 = random_words(rng, count),
                mask = random_words(rng, count);
    Words want_mul(static_cast<size_t>(count)), want_and(static_cast<size_t>(count));
    for (size_t i = 0; i < want_mul.size(); ++i) {
      want_mul[i] = x0[i] * y0[i] + x0[i] * y1[i] + x1[i] * y0[i] + mask[i];
      want_and[i] = (x0[i] & y0[i]) ^ (x0[i] & y1[i]) ^ (x1[i] & y0[i]) ^ mask[i];
    }
    for (Isa isa : available_isas()) {
      for (int threads : {1, 4}) {
        Words z(static_cast<size_t>(count), 5);
        cf::mpc::rss_mul_local(isa, x0.data(), x1.data(), y0.data(), y1.data(), mask.data(),
                               z.data(), count, threads);
        CHECK(z == want_mul);
        Words w(static_cast<size_t>(count), 5);
        cf::mpc::rss_and_local(isa, x0.data(), x1.data(), y0.data(), y1.data(), mask.data(),
                               w.data(), count, threads);
        CHECK(w == want_and);
      }
    }
  }
  // The three parties' local products are an additive sharing of x*y when the
  // masks are a sharing of zero (the protocol's invariant), for every ISA.
  for (Isa isa : available_isas()) {
    const int64_t count = 37;
    Words x[3], y[3], a[3];
    for (int i = 0; i < 3; ++i) {
      x[i] = random_words(rng, count);
      y[i] = random_words(rng, count);
      a[i] = random_words(rng, count);
    }
    Words z[3];
    for (int i = 0; i < 3; ++i) {
      Words mask(static_cast<size_t>(count));
      for (size_t e = 0; e < mask.size(); ++e) mask[e] = a[i][e] - a[(i + 1) % 3][e];
      z[i].resize(static_cast<size_t>(count));
      const int j = (i + 1) % 3;
      cf::mpc::rss_mul_local(isa, x[i].data(), x[j].data(), y[i].data(), y[j].data(), mask.data(),
                             z[i].data(), count, 1);
    }
    bool ok = true;
    for (size_t e = 0; e < static_cast<size_t>(count); ++e) {
      const uint64_t xs = x[0][e] + x[1][e] + x[2][e], ys = y[0][e] + y[1][e] + y[2][e];
      ok = ok && z[0][e] + z[1][e] + z[2][e] == xs * ys;
    }
    CHECK(ok);
  }
  CHECK(throws_argument_error([] {
    cf::mpc::rss_mul_local(Isa::Scalar, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, -1,
                           1);
  }));
}

// ------------------------------------------------------------------ bit slicing

void test_transpose64() {
  std::mt19937_64 rng(22);
  for (int trial = 0; trial < 20; ++trial) {
    uint64_t a[64], t[64] = {};
    for (auto& v : a) v = rng();
    for (int i = 0; i < 64; ++i)
      for (int j = 0; j < 64; ++j) t[j] |= ((a[i] >> j) & 1) << i;
    cf::mpc::transpose64(a);
    bool ok = true;
    for (int i = 0; i < 64; ++i) ok = ok && a[i] == t[i];
    CHECK(ok);
  }
}

void test_bitslice() {
  std::mt19937_64 rng(23);
  for (int64_t n :
       {int64_t{0}, int64_t{1}, int64_t{63}, int64_t{64}, int64_t{65}, int64_t{127}, int64_t{128},
        int64_t{200}, int64_t{511}, int64_t{513}, int64_t{1000}, int64_t{64 * 67 + 5}}) {
    const Words x = random_words(rng, n);
    const int64_t words = cf::mpc::plane_words(n);
    CHECK(words == (n + 63) / 64);
    for (int bits : {1, 2, 7, 32, 63, 64}) {
      Words want(static_cast<size_t>(bits * words), 0);
      for (int b = 0; b < bits; ++b)
        for (int64_t i = 0; i < n; ++i) want[b * words + i / 64] |= ((x[i] >> b) & 1) << (i % 64);
      Words low(x);
      const uint64_t keep = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
      for (auto& v : low) v &= keep;
      for (Isa isa : available_isas()) {
        for (int threads : {1, 3}) {
          Words planes(static_cast<size_t>(bits * words), 9);
          cf::mpc::bitslice(isa, x.data(), n, bits, planes.data(), threads);
          if (planes != want)
            std::fprintf(stderr, "bitslice %s n=%lld bits=%d\n", cf::isa_name(isa),
                         static_cast<long long>(n), bits);
          CHECK(planes == want);
          Words back(static_cast<size_t>(n), 9);
          cf::mpc::unbitslice(isa, want.data(), bits, words, n, back.data(), threads);
          CHECK(back == low);
        }
      }
    }
    // unbitslice of fewer elements than the planes hold: a prefix.
    if (n > 1) {
      Words planes(static_cast<size_t>(64 * words));
      cf::mpc::bitslice(Isa::Scalar, x.data(), n, 64, planes.data(), 1);
      for (Isa isa : available_isas()) {
        Words back(static_cast<size_t>(n - 1));
        cf::mpc::unbitslice(isa, planes.data(), 64, words, n - 1, back.data(), 2);
        CHECK(back == Words(x.begin(), x.end() - 1));
      }
    }
  }
  uint64_t w[64] = {};
  CHECK(throws_argument_error([&] { cf::mpc::bitslice(Isa::Scalar, w, 3, 0, w, 1); }));
  CHECK(throws_argument_error([&] { cf::mpc::bitslice(Isa::Scalar, w, 3, 65, w, 1); }));
  CHECK(throws_argument_error([&] { cf::mpc::bitslice(Isa::Scalar, w, -1, 8, w, 1); }));
  CHECK(throws_argument_error([&] { cf::mpc::unbitslice(Isa::Scalar, w, 8, 1, 65, w, 1); }));
  CHECK(throws_argument_error([&] { cf::mpc::unbitslice(Isa::Scalar, w, 0, 1, 3, w, 1); }));
  CHECK(throws_argument_error([&] { cf::mpc::unbitslice(Isa::Scalar, w, 8, 0, 1, w, 1); }));
}

void test_unavailable_isa() {
  for (Isa isa : {Isa::Avx2, Isa::Avx512, Isa::Neon}) {
    if (cf::isa_available(isa)) continue;
    uint64_t w[4] = {};
    CHECK(throws_argument_error([&] { cf::mpc::ring_gemm(isa, w, w, w, 1, 1, 1, 1); }));
    const cf::ConvShape one{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1};
    CHECK(throws_argument_error([&] { cf::mpc::ring_conv(isa, one, w, w, w, 1); }));
    CHECK(throws_argument_error([&] { cf::mpc::rss_and_local(isa, w, w, w, w, w, w, 1, 1); }));
    CHECK(throws_argument_error([&] { cf::mpc::bitslice(isa, w, 1, 1, w, 1); }));
  }
}

}  // namespace

int main() {
  test_ring_gemm();
  test_ring_conv();
  test_rss_local();
  test_transpose64();
  test_bitslice();
  test_unavailable_isa();
  std::string isas;
  for (Isa isa : available_isas()) isas += std::string(" ") + cf::isa_name(isa);
  return cf_test::report("test_mpc", (" (isas:" + isas + ")").c_str());
}
