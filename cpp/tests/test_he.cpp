// C++ unit tests of the HE kernels: every kernel against a naive reference
// written here, every SIMD path bit-exactly against the scalar one. Built and
// run by ctest, also under AddressSanitizer + UndefinedBehaviorSanitizer.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "he/conv.hpp"
#include "he/isa_dispatch.hpp"
#include "he/kernels.hpp"
#include "he/limb_kernel.hpp"
#include "he/parallel.hpp"
#include "he/prg.hpp"
#include "he/seeded.hpp"
#include "tests/check.hpp"

namespace {

using cf_test::throws_argument_error;

std::mt19937_64 rng(12345);

std::vector<uint64_t> random_u64(size_t n) {
  std::vector<uint64_t> v(n);
  for (auto& x : v) x = rng();
  return v;
}

std::vector<int64_t> random_small(size_t n, int64_t bound) {
  std::uniform_int_distribution<int64_t> d(-bound, bound);
  std::vector<int64_t> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<cf::Isa> isas() { return cf_test::available_isas(); }

// The ISA table of every dispatcher (isa_dispatch.hpp): a forced ISA selects its own
// row, an empty row runs the scalar entry, an ISA this CPU or build lacks is refused
// with the message the Python tests match ("not available"), prefixed when named.
int isa_row_scalar() { return 0; }
int isa_row_avx2() { return 1; }
int isa_row_avx512() { return 2; }
int isa_row_neon() { return 3; }

std::string argument_error_message(cf::Isa isa, const char* who) {
  try {
    cf::require_isa_available(isa, who);
  } catch (const cf::KernelArgumentError& e) {
    return e.what();
  }
  return "";
}

void test_isa_select() {
  const cf::IsaTable<int (*)()> full{isa_row_scalar, isa_row_avx2, isa_row_avx512, isa_row_neon};
  const cf::IsaTable<int (*)()> scalar_only{isa_row_scalar, nullptr, nullptr, nullptr};
  const cf::IsaTable<int (*)()> avx2_for_avx512{isa_row_scalar, isa_row_avx2, isa_row_avx2,
                                                nullptr};
  // (ISA, its row in `full`, its row in `avx2_for_avx512`)
  const std::tuple<cf::Isa, int, int> rows[] = {{cf::Isa::Scalar, 0, 0},
                                                {cf::Isa::Avx2, 1, 1},
                                                {cf::Isa::Avx512, 2, 1},
                                                {cf::Isa::Neon, 3, 0}};
  for (const auto& [isa, row, shared_row] : rows) {
    CHECK(cf::isa_entry(full, isa)() == row);
    CHECK(cf::isa_entry(scalar_only, isa)() == 0);
    if (cf::isa_available(isa)) {
      CHECK(cf::isa_select(full, isa)() == row);
      CHECK(cf::isa_select(scalar_only, isa, "k")() == 0);
      CHECK(cf::isa_select(avx2_for_avx512, isa)() == shared_row);
      CHECK(argument_error_message(isa, nullptr).empty());
    } else {
      CHECK(throws_argument_error([&] { (void)cf::isa_select(full, isa); }));
      const std::string name = cf::isa_name(isa);
      CHECK(argument_error_message(isa, nullptr) ==
            "isa '" + name + "' is not available on this CPU/build; use 'auto' or 'scalar'");
      CHECK(argument_error_message(isa, "ring_gemm") ==
            "ring_gemm: isa '" + name +
                "' is not available on this CPU/build; use 'auto' or 'scalar'");
    }
  }
  CHECK(cf::isa_from_name("auto") == cf::best_isa());
  CHECK(cf::isa_available(cf::best_isa()));
}

void test_decompose() {
  for (int b = 1; b <= 16; ++b) {
    const int l = cf::digit_count(b);
    CHECK(l == (64 + b - 1) / b);
    auto c = random_u64(33);
    c[0] = 0;
    c[1] = ~uint64_t{0};
    std::vector<uint64_t> d(c.size() * static_cast<size_t>(l));
    cf::decompose(c.data(), static_cast<int64_t>(c.size()), b, d.data());
    bool ok = true;
    for (size_t i = 0; i < c.size(); ++i) {
      cf::u128 acc = 0;
      for (int j = 0; j < l; ++j) {
        const uint64_t digit = d[i * static_cast<size_t>(l) + static_cast<size_t>(j)];
        ok = ok && digit < (uint64_t{1} << b);
        acc = (acc << b) + digit;
      }
      ok = ok && static_cast<uint64_t>(acc) == c[i];
    }
    CHECK(ok);
  }
  CHECK(throws_argument_error([] { cf::digit_count(0); }));
  CHECK(throws_argument_error([] { cf::digit_count(17); }));
}

void test_gemm(int64_t m, int64_t k, int64_t n, int64_t bound, bool transposed) {
  const auto w = random_u64(static_cast<size_t>(m * k));
  const auto s = random_small(static_cast<size_t>(k * n), bound);
  // Naive reference, written independently of the library.
  std::vector<uint64_t> ref(static_cast<size_t>(m * n), 0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      uint64_t acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        const uint64_t wv =
            transposed ? w[static_cast<size_t>(p * m + i)] : w[static_cast<size_t>(i * k + p)];
        acc += wv * static_cast<uint64_t>(s[static_cast<size_t>(p * n + j)]);
      }
      ref[static_cast<size_t>(i * n + j)] = acc;
    }
  const cf::View2D<const uint64_t> W = transposed
                                           ? cf::View2D<const uint64_t>{w.data(), m, k, 1, m}
                                           : cf::View2D<const uint64_t>{w.data(), m, k, k, 1};
  const cf::View2D<const int64_t> S{s.data(), k, n, n, 1};
  for (cf::Isa isa : isas()) {
    for (int threads : {1, 2, 3}) {
      std::vector<uint64_t> out(static_cast<size_t>(m * n), 0xdeadbeef);
      cf::gemm_wide_small(isa, W, S, cf::View2D<uint64_t>{out.data(), m, n, n, 1}, threads);
      if (out != ref) {
        std::fprintf(stderr, "gemm mismatch isa=%s m=%lld k=%lld n=%lld bound=%lld t=%d\n",
                     cf::isa_name(isa), static_cast<long long>(m), static_cast<long long>(k),
                     static_cast<long long>(n), static_cast<long long>(bound), threads);
      }
      CHECK(out == ref);
    }
  }
}

// out[r] = sum_j M[r][j] * digits(c)[j], the definition of a key switch.
std::vector<uint64_t> naive_keyswitch(const std::vector<uint64_t>& M, int64_t rows,
                                      const std::vector<uint64_t>& c, int b) {
  const int64_t n = static_cast<int64_t>(c.size());
  const int64_t cols = n * cf::digit_count(b);
  std::vector<uint64_t> digits(static_cast<size_t>(cols));
  cf::decompose(c.data(), n, b, digits.data());
  std::vector<uint64_t> ref(static_cast<size_t>(rows), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j)
      ref[static_cast<size_t>(r)] +=
          M[static_cast<size_t>(r * cols + j)] * digits[static_cast<size_t>(j)];
  return ref;
}

void test_keyswitch() {
  for (int b : {1, 2, 3, 7, 8, 13, 16}) {
    for (int64_t rows : std::vector<int64_t>{0, 1, 3, 4, 5, 17}) {
      const int64_t n = 11;
      const int64_t cols = n * cf::digit_count(b);
      const auto M = random_u64(static_cast<size_t>(rows * cols));
      const auto c = random_u64(static_cast<size_t>(n));
      const auto ref = naive_keyswitch(M, rows, c, b);
      for (cf::Isa isa : isas()) {
        for (int threads : {1, 2}) {
          std::vector<uint64_t> out(static_cast<size_t>(rows), 7);
          cf::keyswitch(isa, M.data(), rows, n, b, 0, c.data(), out.data(), threads);
          CHECK(out == ref);
        }
      }
    }
  }
  // Skipped low digits, and the few-rows/many-words split with partial sums.
  for (int b : {1, 4, 8, 16}) {
    const int l = cf::digit_count(b);
    for (int skip : {0, 1, l / 2, l - 1}) {
      for (int64_t rows : std::vector<int64_t>{1, 2, 6}) {
        const int64_t n = 1500;
        const int64_t cols = n * l;
        const auto M = random_u64(static_cast<size_t>(rows * cols));
        auto c = random_u64(static_cast<size_t>(n));
        const int zero_bits = std::min(64, skip * b);
        for (auto& x : c) x = zero_bits >= 64 ? 0 : (x >> zero_bits) << zero_bits;
        const auto ref = naive_keyswitch(M, rows, c, b);
        for (cf::Isa isa : isas()) {
          for (int threads : {1, 2, 3}) {
            std::vector<uint64_t> out(static_cast<size_t>(rows), 7);
            cf::keyswitch(isa, M.data(), rows, n, b, skip, c.data(), out.data(), threads);
            CHECK(out == ref);
          }
        }
      }
    }
  }
  uint64_t dummy = 0;
  uint64_t one = 1;
  CHECK(throws_argument_error(
      [&] { cf::keyswitch(cf::Isa::Scalar, &dummy, 1, 1, 0, 0, &dummy, &dummy, 1); }));
  // A word with a non-zero digit where skip_low promises zeros is rejected.
  std::vector<uint64_t> m8(8, 1);
  CHECK(throws_argument_error(
      [&] { cf::keyswitch(cf::Isa::Scalar, m8.data(), 1, 1, 8, 1, &one, &dummy, 1); }));
}

void test_tensor_round() {
  std::vector<uint64_t> a = random_u64(9), b = random_u64(7);
  a[0] = 0;
  a[1] = uint64_t{1} << 63;
  a[2] = ~uint64_t{0};
  b[0] = (uint64_t{1} << 63) - 1;
  for (int shift : {1, 8, 32, 40, 63}) {
    std::vector<uint64_t> out(a.size() * b.size());
    cf::tensor_round(a.data(), 9, b.data(), 7, shift, out.data(), 2);
    bool ok = true;
    for (size_t j = 0; j < b.size(); ++j)
      for (size_t i = 0; i < a.size(); ++i) {
        const cf::i128 p = static_cast<cf::i128>(static_cast<int64_t>(a[i])) *
                           static_cast<cf::i128>(static_cast<int64_t>(b[j]));
        // floor((p + 2^(shift-1)) / 2^shift) by exact division with a correction.
        const cf::i128 num = p + (static_cast<cf::i128>(1) << (shift - 1));
        const cf::i128 den = static_cast<cf::i128>(1) << shift;
        cf::i128 q = num / den;
        if ((num % den != 0) && (num < 0)) q -= 1;
        ok = ok && out[j * a.size() + i] == static_cast<uint64_t>(q);
      }
    CHECK(ok);
  }
  CHECK(throws_argument_error([&] { cf::tensor_round(a.data(), 1, b.data(), 1, 0, a.data(), 1); }));
  CHECK(
      throws_argument_error([&] { cf::tensor_round(a.data(), 1, b.data(), 1, 64, a.data(), 1); }));
}

void test_chacha20() {
  // RFC 8439 section 2.3.2 block function test vector.
  uint8_t key[32];
  for (int i = 0; i < 32; ++i) key[i] = static_cast<uint8_t>(i);
  const uint8_t nonce[12] = {0, 0, 0, 9, 0, 0, 0, 0x4a, 0, 0, 0, 0};
  const uint8_t expected[16] = {0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15,
                                0x50, 0x0f, 0xdd, 0x1f, 0xa3, 0x20, 0x71, 0xc4};
  std::vector<uint8_t> out(64 * 3000);
  cf::chacha20_stream(key, nonce, 1, 3000, out.data(), 2);
  CHECK(std::memcmp(out.data(), expected, 16) == 0);
  std::vector<uint8_t> single(64);
  cf::chacha20_stream(key, nonce, 1 + 2999, 1, single.data(), 1);
  CHECK(std::memcmp(out.data() + 64 * 2999, single.data(), 64) == 0);
  CHECK(throws_argument_error(
      [&] { cf::chacha20_stream(key, nonce, 0xffffffffu, 2, out.data(), 1); }));
}

void test_parallel_for() {
  std::vector<int> hits(1000, 0);
  cf::parallel_for(1000, 4, 7, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)] += 1;
  });
  bool all_once = true;
  for (int h : hits) all_once = all_once && h == 1;
  CHECK(all_once);
  bool caught = false;
  try {
    cf::parallel_for(100, 3, 1, [](int64_t b, int64_t) {
      if (b > 0) throw std::runtime_error("boom");
    });
  } catch (const std::runtime_error&) {
    caught = true;
  }
  CHECK(caught);
}

}  // namespace

// Seeded convolution: every ISA against a naive padded-image reference.
void test_seeded_conv(int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t f,
                      int64_t stride, bool same, bool with_bias, int64_t xbound) {
  const int64_t out_h = same ? (h + stride - 1) / stride : (h - kh) / stride + 1;
  const int64_t out_w = same ? (w + stride - 1) / stride : (w - kw) / stride + 1;
  const int64_t pad_top = same ? std::max<int64_t>((out_h - 1) * stride + kh - h, 0) / 2 : 0;
  const int64_t pad_left = same ? std::max<int64_t>((out_w - 1) * stride + kw - w, 0) / 2 : 0;
  const cf::ConvShape s{n, h, w, c, kh, kw, f, stride, stride, pad_top, pad_left, out_h, out_w};
  const auto x = random_small(static_cast<size_t>(n * h * w * c), xbound);
  const auto kern = random_u64(static_cast<size_t>(kh * kw * c * f));
  const auto bias = random_u64(static_cast<size_t>(f));
  const size_t out_size = static_cast<size_t>(n * out_h * out_w * f);
  std::vector<uint64_t> expect(out_size, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t oy = 0; oy < out_h; ++oy)
      for (int64_t ox = 0; ox < out_w; ++ox)
        for (int64_t o = 0; o < f; ++o) {
          uint64_t acc = with_bias ? bias[static_cast<size_t>(o)] : 0;
          for (int64_t ky = 0; ky < kh; ++ky)
            for (int64_t kx = 0; kx < kw; ++kx)
              for (int64_t ch = 0; ch < c; ++ch) {
                const int64_t iy = oy * stride - pad_top + ky;
                const int64_t ix = ox * stride - pad_left + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                const size_t xi = static_cast<size_t>(((i * h + iy) * w + ix) * c + ch);
                acc += static_cast<uint64_t>(x[xi]) *
                       kern[static_cast<size_t>(((ky * kw + kx) * c + ch) * f + o)];
              }
          expect[static_cast<size_t>(((i * out_h + oy) * out_w + ox) * f + o)] = acc;
        }
  for (cf::Isa isa : isas()) {
    for (int threads : {1, 3}) {
      std::vector<uint64_t> out(out_size, 0xdeadbeef);
      cf::seeded_conv(isa, s, x.data(), kern.data(), with_bias ? bias.data() : nullptr, out.data(),
                      threads);
      CHECK(out == expect);
    }
  }
}

void test_seeded_conv_rejects() {
  const cf::ConvShape s{1, 4, 4, 1, 3, 3, 4, 1, 1, 1, 1, 4, 4};
  std::vector<int64_t> x(16, 1);
  const auto kern = random_u64(36);
  std::vector<uint64_t> out(64);
  auto run = [&](const cf::ConvShape& g) {
    cf::seeded_conv(cf::Isa::Scalar, g, x.data(), kern.data(), nullptr, out.data(), 1);
  };
  x[5] = int64_t{1} << 31;
  CHECK(throws_argument_error([&] { run(s); }));
  x[5] = -(int64_t{1} << 31);
  CHECK(throws_argument_error([&] { run(s); }));
  x[5] = (int64_t{1} << 31) - 1;
  CHECK(!throws_argument_error([&] { run(s); }));
  cf::ConvShape bad = s;
  bad.pad_top = 3;
  CHECK(throws_argument_error([&] { run(bad); }));
  bad = s;
  bad.out_w = 9;
  CHECK(throws_argument_error([&] { run(bad); }));
  bad = s;
  bad.stride_h = 0;
  CHECK(throws_argument_error([&] { run(bad); }));
}

// Decrypt finish: a naive reference (rounding as a floor division, no shifts),
// the threaded kernel, and the fused conv + finish for every ISA's conv kernel.
std::vector<int64_t> naive_finish(const cf::FinishShape& s, const std::vector<uint64_t>& a,
                                  const std::vector<uint64_t>& b) {
  const int64_t div = int64_t{1} << (64 - s.tau);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t oy = 0; oy < s.out_h; ++oy)
      for (int64_t ox = 0; ox < s.out_w; ++ox)
        for (int64_t k = 0; k < s.f; ++k) {
          uint64_t sum = 0;
          for (int64_t py = 0; py < s.pool_h; ++py)
            for (int64_t px = 0; px < s.pool_w; ++px) {
              const size_t idx = static_cast<size_t>(
                  ((i * s.h + oy * s.pool_sh + py) * s.w + ox * s.pool_sw + px) * s.f + k);
              const uint64_t phase = a[idx] + b[idx] + (uint64_t{1} << (63 - s.tau));
              const int64_t v = static_cast<int64_t>(phase);
              int64_t y = v >= 0 ? v / div : -((-(v + 1)) / div) - 1;  // floor(v / div)
              if (s.relu && y < 0) y = 0;
              sum += static_cast<uint64_t>(y);
            }
          out.push_back(static_cast<int64_t>(sum));
        }
  return out;
}

void test_seeded_finish(int64_t n, int64_t h, int64_t w, int64_t f, int tau, bool relu, int64_t ph,
                        int64_t pw, int64_t sh, int64_t sw) {
  cf::FinishShape s{n, h, w, f, tau, relu, ph, pw, sh, sw, 0, 0};
  cf::check_finish_shape(s);
  const size_t size = static_cast<size_t>(n * h * w * f);
  auto a = random_u64(size);
  const auto b = random_u64(size);
  const uint64_t edges[] = {0, 1, uint64_t{1} << 63, (uint64_t{1} << 63) - 1, ~uint64_t{0}};
  for (size_t i = 0; i < size && i < 5; ++i) a[i] = edges[i];
  const auto expect = naive_finish(s, a, b);
  for (int threads : {1, 3}) {
    std::vector<int64_t> out(expect.size(), 0x5a5a);
    cf::decrypt_finish(s, a.data(), b.data(), out.data(), threads);
    CHECK(out == expect);
  }
  // Fused: the a-term is a 3x3 SAME conv of an h x w x 2 image batch.
  const cf::ConvShape conv{n, h, w, 2, 3, 3, f, 1, 1, 1, 1, h, w};
  const auto x = random_small(static_cast<size_t>(n * h * w * 2), 1000);
  const auto kern = random_u64(static_cast<size_t>(9 * 2 * f));
  const auto bias = random_u64(static_cast<size_t>(f));
  std::vector<uint64_t> a_term(size);
  cf::seeded_conv(cf::Isa::Scalar, conv, x.data(), kern.data(), bias.data(), a_term.data(), 1);
  const auto fused_expect = naive_finish(s, a_term, b);
  for (cf::Isa isa : isas()) {
    for (int threads : {1, 3}) {
      std::vector<int64_t> out(fused_expect.size(), 0x5a5a);
      cf::seeded_conv_finish(isa, conv, x.data(), kern.data(), bias.data(), s, b.data(), out.data(),
                             threads);
      CHECK(out == fused_expect);
    }
  }
}

void test_seeded_finish_rejects() {
  auto shape = [](int tau, int64_t ph, int64_t sh) {
    cf::FinishShape s{2, 4, 4, 3, tau, true, ph, ph, sh, sh, 0, 0};
    cf::check_finish_shape(s);
  };
  CHECK(!throws_argument_error([&] { shape(2, 4, 1); }));
  CHECK(!throws_argument_error([&] { shape(62, 1, 1); }));
  CHECK(throws_argument_error([&] { shape(1, 2, 2); }));
  CHECK(throws_argument_error([&] { shape(63, 2, 2); }));
  CHECK(throws_argument_error([&] { shape(30, 5, 1); }));  // window larger than the input
  CHECK(throws_argument_error([&] { shape(30, 0, 1); }));
  CHECK(throws_argument_error([&] { shape(30, 2, 0); }));
  cf::FinishShape fin{1, 4, 4, 3, 30, true, 2, 2, 2, 2, 0, 0};
  cf::check_finish_shape(fin);
  const cf::ConvShape conv{1, 4, 4, 1, 3, 3, 4, 1, 1, 1, 1, 4, 4};  // 4 filters, b has 3
  std::vector<int64_t> x(16, 1);
  const auto kern = random_u64(36);
  const auto b = random_u64(48);
  std::vector<int64_t> out(12);
  CHECK(throws_argument_error([&] {
    cf::seeded_conv_finish(cf::Isa::Scalar, conv, x.data(), kern.data(), nullptr, fin, b.data(),
                           out.data(), 1);
  }));
}

// The limb block: a naive int64 reference written from the definition in
// limb_kernel.hpp, against every ISA (scalar reference included), threads 1 and 3.
struct LimbCase {
  int64_t n, h, w, c, kh, kw, f, sh, sw;
  bool same;
  int64_t pool_h, pool_w, pool_sh, pool_sw;
  int64_t xbound, kbound;
  bool zero_high;   // family 0, offset 0 and bias 0 all zero: H = 0, ReLU falls to L's sign
  int pattern = 0;  // 0: 1/3 zeros; 1: zero but for a centre square (all-zero patches,
                    // skipped); 2: signed values with zero-sum patches (not skipped)
};

void test_limb_block(const LimbCase& t) {
  const int64_t out_h = t.same ? (t.h + t.sh - 1) / t.sh : (t.h - t.kh) / t.sh + 1;
  const int64_t out_w = t.same ? (t.w + t.sw - 1) / t.sw : (t.w - t.kw) / t.sw + 1;
  const int64_t pad_h = t.same ? std::max<int64_t>((out_h - 1) * t.sh + t.kh - t.h, 0) : 0;
  const int64_t pad_w = t.same ? std::max<int64_t>((out_w - 1) * t.sw + t.kw - t.w, 0) : 0;
  cf::LimbShape s{t.n,
                  t.h,
                  t.w,
                  t.c,
                  t.kh,
                  t.kw,
                  t.f,
                  t.sh,
                  t.sw,
                  pad_h / 2,
                  pad_h - pad_h / 2,
                  pad_w / 2,
                  pad_w - pad_w / 2,
                  t.pool_h,
                  t.pool_w,
                  t.pool_sh,
                  t.pool_sw,
                  0,
                  0,
                  0,
                  0};
  std::uniform_int_distribution<int64_t> xd(0, t.xbound);
  std::vector<int64_t> x(static_cast<size_t>(t.n * t.h * t.w * t.c));
  for (auto& v : x) v = xd(rng) % 3 == 0 ? 0 : xd(rng);  // many zeros, like MNIST
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
    const int64_t y = i / (t.w * t.c) % t.h, xx = i / t.c % t.w;
    if (t.pattern == 1 && (y < t.h / 3 || y >= t.h - t.h / 3 || xx < t.w / 3)) x[i] = 0;
    if (t.pattern == 2) x[i] = (y % 2 == 0 ? 1 : -1) * (i % 2 == 0 ? 0 : (xx / 2 + 1));
  }
  const int64_t taps = t.kh * t.kw * t.c;
  auto kern = random_small(static_cast<size_t>(3 * taps * t.f), t.kbound);
  auto bias = random_small(static_cast<size_t>(3 * t.f), 50);
  std::vector<int64_t> offsets{-7, -(t.kbound / 2), 3};
  if (t.zero_high) {
    std::fill(kern.begin(), kern.begin() + taps * t.f, 0);
    std::fill(bias.begin(), bias.begin() + t.f, 0);
    offsets[0] = 0;
  }
  const int64_t ph = (out_h - t.pool_h) / t.pool_sh + 1;
  const int64_t pw = (out_w - t.pool_w) / t.pool_sw + 1;
  // Naive reference.
  std::vector<int64_t> high(static_cast<size_t>(t.n * out_h * out_w * t.f));
  std::vector<int64_t> tail(high.size());
  int64_t l1 = 0, tmin = 0, tmax = 0, ptmax = 0;
  bool first = true;
  for (int64_t i = 0; i < t.n; ++i)
    for (int64_t oy = 0; oy < out_h; ++oy)
      for (int64_t ox = 0; ox < out_w; ++ox) {
        int64_t psum = 0;
        std::vector<int64_t> conv(static_cast<size_t>(3 * t.f), 0);
        for (int64_t ky = 0; ky < t.kh; ++ky)
          for (int64_t kx = 0; kx < t.kw; ++kx)
            for (int64_t ch = 0; ch < t.c; ++ch) {
              const int64_t iy = oy * t.sh - s.pad_top + ky;
              const int64_t ix = ox * t.sw - s.pad_left + kx;
              if (iy < 0 || iy >= t.h || ix < 0 || ix >= t.w) continue;
              const int64_t v = x[static_cast<size_t>(((i * t.h + iy) * t.w + ix) * t.c + ch)];
              psum += v;
              const int64_t tap = (ky * t.kw + kx) * t.c + ch;
              for (int64_t j = 0; j < 3; ++j)
                for (int64_t o = 0; o < t.f; ++o)
                  conv[static_cast<size_t>(j * t.f + o)] +=
                      v * kern[static_cast<size_t>((j * taps + tap) * t.f + o)];
            }
        int64_t abs_sum = 0;
        for (int64_t ky = 0; ky < t.kh; ++ky)
          for (int64_t kx = 0; kx < t.kw; ++kx)
            for (int64_t ch = 0; ch < t.c; ++ch) {
              const int64_t iy = oy * t.sh - s.pad_top + ky;
              const int64_t ix = ox * t.sw - s.pad_left + kx;
              if (iy < 0 || iy >= t.h || ix < 0 || ix >= t.w) continue;
              const size_t xi = static_cast<size_t>(((i * t.h + iy) * t.w + ix) * t.c + ch);
              abs_sum += std::llabs(x[xi]);
            }
        l1 = std::max(l1, abs_sum);
        for (int64_t o = 0; o < t.f; ++o) {
          const auto at = [&](int64_t j) { return static_cast<size_t>(j * t.f + o); };
          const int64_t hv = conv[at(0)] + offsets[0] * psum + bias[at(0)];
          const int64_t lv = conv[at(1)] + offsets[1] * psum + bias[at(1)];
          const int64_t tv = conv[at(2)] + offsets[2] * psum + bias[at(2)];
          const size_t idx = static_cast<size_t>(((i * out_h + oy) * out_w + ox) * t.f + o);
          high[idx] = (hv > 0 || (hv == 0 && lv > 0)) ? hv : 0;
          tail[idx] = std::max<int64_t>(tv, 0);
          tmin = first ? tv : std::min(tmin, tv);
          tmax = first ? tv : std::max(tmax, tv);
          first = false;
        }
      }
  std::vector<int64_t> expect;
  for (int64_t i = 0; i < t.n; ++i)
    for (int64_t py = 0; py < ph; ++py)
      for (int64_t px = 0; px < pw; ++px)
        for (int64_t o = 0; o < t.f; ++o) {
          int64_t hs = 0, ts = 0;
          for (int64_t wy = 0; wy < t.pool_h; ++wy)
            for (int64_t wx = 0; wx < t.pool_w; ++wx) {
              const size_t idx = static_cast<size_t>(
                  ((i * out_h + py * t.pool_sh + wy) * out_w + px * t.pool_sw + wx) * t.f + o);
              hs += high[idx];
              ts += tail[idx];
            }
          expect.push_back(hs);
          ptmax = (i == 0 && py == 0 && px == 0 && o == 0) ? ts : std::max(ptmax, ts);
        }
  for (cf::Isa isa : isas()) {
    for (int threads : {1, 3}) {
      std::vector<int64_t> out(expect.size(), -12345);
      const cf::LimbStats st = cf::limb_block(isa, s, x.data(), kern.data(), offsets.data(),
                                              bias.data(), out.data(), threads);
      CHECK(st.computed);
      CHECK(st.l1 == l1);
      CHECK(out == expect);
      CHECK(st.tail_min == tmin && st.tail_max == tmax && st.pooled_tail_max == ptmax);
      // Without the tail family: the same features and l1, the tail statistics 0.
      {
        std::vector<int64_t> bare(expect.size(), -12345);
        cf::LimbOut bout;
        bout.words = bare.data();
        const cf::LimbStats bs = cf::limb_block(isa, s, x.data(), kern.data(), offsets.data(),
                                                bias.data(), bout, threads, false);
        CHECK(bs.computed && bs.l1 == l1 && bare == expect);
        CHECK(bs.tail_min == 0 && bs.tail_max == 0 && bs.pooled_tail_max == 0);
      }
      // The float32 output: each feature divided by the scale, rounded once (as
      // float64 division rounded to float32), or a decline when a feature is not
      // a float32 number (|v| >= 2^24).
      bool representable = true;
      for (int64_t v : expect) representable = representable && v > -(1 << 24) && v < (1 << 24);
      for (float scale : {1.0f, 3.0f, 1000.0f, 128000.0f}) {
        std::vector<float> quotients(expect.size(), -7.0f);
        cf::LimbOut fout;
        fout.quotients = quotients.data();
        fout.scale = scale;
        const cf::LimbStats fs = cf::limb_block(isa, s, x.data(), kern.data(), offsets.data(),
                                                bias.data(), fout, threads);
        CHECK(fs.computed == representable);
        std::vector<float> bare(expect.size(), -7.0f);
        cf::LimbOut bout;
        bout.quotients = bare.data();
        bout.scale = scale;
        const cf::LimbStats bs = cf::limb_block(isa, s, x.data(), kern.data(), offsets.data(),
                                                bias.data(), bout, threads, false);
        CHECK(bs.computed == representable);
        if (!representable) continue;
        CHECK(bare == quotients);
        for (size_t k = 0; k < expect.size(); ++k) {
          CHECK(quotients[k] ==
                static_cast<float>(static_cast<double>(expect[k]) / static_cast<double>(scale)));
        }
      }
    }
  }
}

void test_limb_out_rejects_bad_outputs() {
  cf::LimbShape s{1, 4, 4, 1, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
  std::vector<int64_t> x(16, 1), kern(3 * 9 * 2, 1), offsets(3, 0), bias(6, 0), words(32);
  std::vector<float> quotients(32);
  const auto run = [&](bool with_words, bool with_quotients, float scale) {
    cf::LimbOut out;
    out.words = with_words ? words.data() : nullptr;
    out.quotients = with_quotients ? quotients.data() : nullptr;
    out.scale = scale;
    return cf::limb_block(cf::Isa::Scalar, s, x.data(), kern.data(), offsets.data(), bias.data(),
                          out, 1);
  };
  CHECK(run(true, false, 1.0f).computed);
  CHECK(run(false, true, 7.0f).computed);
  CHECK(throws_argument_error([&] { run(true, true, 1.0f); }));
  CHECK(throws_argument_error([&] { run(false, false, 1.0f); }));
  CHECK(throws_argument_error([&] { run(false, true, 0.0f); }));
  CHECK(throws_argument_error([&] { run(false, true, 2.5f); }));
  CHECK(throws_argument_error([&] { run(false, true, 16777216.0f); }));
}

void test_limb_block_declines_and_rejects() {
  cf::LimbShape s{2, 6, 6, 1, 3, 3, 4, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0};
  std::vector<int64_t> x(72, 1000);
  std::vector<int64_t> kern(3 * 9 * 4, 5);
  std::vector<int64_t> bias(12, 1), offsets{0, 0, 0};
  std::vector<int64_t> out(2 * 3 * 3 * 4, -1);
  auto run = [&](const cf::LimbShape& g, cf::Isa isa) {
    return cf::limb_block(isa, g, x.data(), kern.data(), offsets.data(), bias.data(), out.data(),
                          2);
  };
  for (cf::Isa isa : isas()) {
    CHECK(run(s, isa).computed);  // l1 = 9000, 9000 * 5 < 2^24
    x[7] = 4000000;               // l1 * max|k| >= 2^24: declines
    cf::LimbStats st = run(s, isa);
    CHECK(!st.computed && st.l1 == 4008000);
    x[7] = 3355443 - 8000;  // the largest exact l1: 3355443 * 5 < 2^24 <= 3355444 * 5
    CHECK(run(s, isa).computed);
    x[7] = 3355444 - 8000;
    CHECK(!run(s, isa).computed);
    x[7] = int64_t{1} << 40;  // |x| >= 2^31: declines with a saturated l1
    st = run(s, isa);
    CHECK(!st.computed && st.l1 == std::numeric_limits<int64_t>::max());
    x[7] = std::numeric_limits<int64_t>::min();
    CHECK(!run(s, isa).computed);
    x[7] = 1000;
    offsets[2] = 2000;  // |o| l1 >= 2^24: declines
    CHECK(!run(s, isa).computed);
    offsets[2] = 1864;  // 1864 * 9000 + 1 < 2^24 <= 1865 * 9000 + 1
    CHECK(run(s, isa).computed);
    offsets[2] = 1865;
    CHECK(!run(s, isa).computed);
    offsets[2] = 0;
  }
  CHECK(throws_argument_error([&] {
    kern[3] = int64_t{1} << 24;
    run(s, cf::Isa::Scalar);
  }));
  kern[3] = 5;
  CHECK(throws_argument_error([&] {
    bias[0] = -(int64_t{1} << 24);
    run(s, cf::Isa::Scalar);
  }));
  bias[0] = 1;
  cf::LimbShape bad = s;
  bad.pad_top = 3;
  CHECK(throws_argument_error([&] { run(bad, cf::Isa::Scalar); }));
  bad = s;
  bad.stride_w = 0;
  CHECK(throws_argument_error([&] { run(bad, cf::Isa::Scalar); }));
  bad = s;
  bad.pool_h = 7;
  CHECK(throws_argument_error([&] { run(bad, cf::Isa::Scalar); }));
  bad = s;
  bad.f = 0;
  CHECK(throws_argument_error([&] { run(bad, cf::Isa::Scalar); }));
  bad = s;
  bad.n = -1;
  CHECK(throws_argument_error([&] { run(bad, cf::Isa::Scalar); }));
  CHECK(run(s, cf::Isa::Scalar).computed);
}

// Direct convolution: every ISA against a naive reference written here (and, where
// |x| < 2^31, against seeded_conv), for kernel words `words`: 0 random, 1 all zero,
// 2 all 2^64 - 1, 3 alternating 0 / 2^64 - 1.
struct ConvCase {
  int64_t n, h, w, c, kh, kw, f, stride_h, stride_w;
  bool same, with_bias;
  int64_t xbound;
  int words;
};

cf::ConvShape conv_case_shape(const ConvCase& t) {
  const int64_t out_h =
      t.same ? (t.h + t.stride_h - 1) / t.stride_h : (t.h - t.kh) / t.stride_h + 1;
  const int64_t out_w =
      t.same ? (t.w + t.stride_w - 1) / t.stride_w : (t.w - t.kw) / t.stride_w + 1;
  const int64_t pad_top =
      t.same ? std::max<int64_t>((out_h - 1) * t.stride_h + t.kh - t.h, 0) / 2 : 0;
  const int64_t pad_left =
      t.same ? std::max<int64_t>((out_w - 1) * t.stride_w + t.kw - t.w, 0) / 2 : 0;
  return {t.n,        t.h,        t.w,     t.c,      t.kh,  t.kw, t.f,
          t.stride_h, t.stride_w, pad_top, pad_left, out_h, out_w};
}

std::vector<uint64_t> naive_conv(const cf::ConvShape& s, const std::vector<int64_t>& x,
                                 const std::vector<uint64_t>& kern, const uint64_t* bias) {
  std::vector<uint64_t> out(static_cast<size_t>(s.n * s.out_h * s.out_w * s.f), 0);
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t oy = 0; oy < s.out_h; ++oy)
      for (int64_t ox = 0; ox < s.out_w; ++ox)
        for (int64_t o = 0; o < s.f; ++o) {
          uint64_t acc = bias ? bias[o] : 0;
          for (int64_t ky = 0; ky < s.kh; ++ky)
            for (int64_t kx = 0; kx < s.kw; ++kx)
              for (int64_t ch = 0; ch < s.c; ++ch) {
                const int64_t iy = oy * s.stride_h - s.pad_top + ky;
                const int64_t ix = ox * s.stride_w - s.pad_left + kx;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                const size_t xi = static_cast<size_t>(((i * s.h + iy) * s.w + ix) * s.c + ch);
                acc += static_cast<uint64_t>(x[xi]) *
                       kern[static_cast<size_t>(((ky * s.kw + kx) * s.c + ch) * s.f + o)];
              }
          out[static_cast<size_t>(((i * s.out_h + oy) * s.out_w + ox) * s.f + o)] = acc;
        }
  return out;
}

void test_conv_direct(const ConvCase& t) {
  const cf::ConvShape s = conv_case_shape(t);
  auto x = random_small(static_cast<size_t>(t.n * t.h * t.w * t.c), t.xbound);
  if (!x.empty()) {  // the extremes of the range always occur
    x[0] = t.xbound;
    x[x.size() - 1] = -t.xbound;
  }
  auto kern = random_u64(static_cast<size_t>(t.kh * t.kw * t.c * t.f));
  for (size_t i = 0; i < kern.size(); ++i) {
    if (t.words == 1) kern[i] = 0;
    if (t.words == 2) kern[i] = ~uint64_t{0};
    if (t.words == 3) kern[i] = i % 2 ? ~uint64_t{0} : 0;
  }
  const auto bias = random_u64(static_cast<size_t>(t.f));
  const uint64_t* b = t.with_bias ? bias.data() : nullptr;
  const auto expect = naive_conv(s, x, kern, b);
  if (t.xbound < (int64_t{1} << 31)) {
    std::vector<uint64_t> seeded(expect.size(), 1);
    cf::seeded_conv(cf::Isa::Scalar, s, x.data(), kern.data(), b, seeded.data(), 2);
    CHECK(seeded == expect);
  }
  for (cf::Isa isa : isas()) {
    for (int threads : {1, 2, 3}) {
      std::vector<uint64_t> out(expect.size(), 0xdeadbeef);
      cf::conv_direct(isa, s, x.data(), kern.data(), b, out.data(), threads);
      if (out != expect) {
        std::fprintf(stderr, "conv_direct mismatch: isa %s threads %d n %lld h %lld f %lld\n",
                     cf::isa_name(isa), threads, static_cast<long long>(t.n),
                     static_cast<long long>(t.h), static_cast<long long>(t.f));
      }
      CHECK(out == expect);
    }
  }
#if defined(CIPHERFUSE_HAVE_AVX2)
  // The two AVX-512 kernels that conv_direct chooses between, each on its own.
  for (int threads : {1, 2}) {
    if (cf::isa_available(cf::Isa::Avx512)) {
      std::vector<uint64_t> out(expect.size(), 0xdeadbeef);
      cf::conv_direct_avx512_fma(s, x.data(), kern.data(), b, out.data(), threads);
      CHECK(out == expect);
    }
    if (cf::avx512_vnni_available() && t.xbound < (int64_t{1} << 15)) {
      std::vector<uint64_t> out(expect.size(), 0xdeadbeef);
      cf::conv_direct_avx512_vnni(s, x.data(), kern.data(), b, out.data(), threads);
      CHECK(out == expect);
    }
  }
#endif
}

void test_conv_patch_l1(const ConvCase& t) {
  const cf::ConvShape s = conv_case_shape(t);
  const auto x = random_small(static_cast<size_t>(t.n * t.h * t.w * t.c), t.xbound);
  uint64_t expect = 0;
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t oy = 0; oy < s.out_h; ++oy)
      for (int64_t ox = 0; ox < s.out_w; ++ox) {
        uint64_t sum = 0;
        for (int64_t ky = 0; ky < s.kh; ++ky)
          for (int64_t kx = 0; kx < s.kw; ++kx)
            for (int64_t ch = 0; ch < s.c; ++ch) {
              const int64_t iy = oy * s.stride_h - s.pad_top + ky;
              const int64_t ix = ox * s.stride_w - s.pad_left + kx;
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              const int64_t v = x[static_cast<size_t>(((i * s.h + iy) * s.w + ix) * s.c + ch)];
              sum += static_cast<uint64_t>(v < 0 ? -v : v);
            }
        expect = std::max(expect, sum);
      }
  for (int threads : {1, 2, 3, 7}) CHECK(cf::conv_patch_l1_max(s, x.data(), threads) == expect);
}

void test_conv_direct_rejects() {
  const cf::ConvShape s{1, 4, 4, 1, 3, 3, 4, 1, 1, 1, 1, 4, 4};
  std::vector<int64_t> x(16, 1);
  const auto kern = random_u64(36);
  std::vector<uint64_t> out(64);
  auto run = [&](const cf::ConvShape& g) {
    cf::conv_direct(cf::Isa::Scalar, g, x.data(), kern.data(), nullptr, out.data(), 1);
  };
  run(s);
  CHECK(out == naive_conv(s, x, kern, nullptr));
  auto bad = [&](auto edit) {
    cf::ConvShape g = s;
    edit(g);
    return throws_argument_error([&] { run(g); }) &&
           throws_argument_error([&] { (void)cf::conv_patch_l1_max(g, x.data(), 1); });
  };
  CHECK(bad([](cf::ConvShape& g) { g.stride_h = 0; }));
  CHECK(bad([](cf::ConvShape& g) { g.stride_w = -1; }));
  CHECK(bad([](cf::ConvShape& g) { g.pad_top = 3; }));
  CHECK(bad([](cf::ConvShape& g) { g.pad_left = -1; }));
  CHECK(bad([](cf::ConvShape& g) { g.out_h = 6; }));  // window starts past the image
  CHECK(bad([](cf::ConvShape& g) { g.out_w = 0; }));
  CHECK(bad([](cf::ConvShape& g) { g.kh = 0; }));
  CHECK(bad([](cf::ConvShape& g) { g.f = 0; }));
  CHECK(bad([](cf::ConvShape& g) { g.c = 0; }));
  CHECK(bad([](cf::ConvShape& g) { g.n = -1; }));
  CHECK(bad([](cf::ConvShape& g) { g.kh = g.kw = int64_t{1} << 12; }));  // 2^24 taps
  for (cf::Isa isa : {cf::Isa::Avx2, cf::Isa::Avx512, cf::Isa::Neon}) {
    if (!cf::isa_available(isa)) {
      CHECK(throws_argument_error(
          [&] { cf::conv_direct(isa, s, x.data(), kern.data(), nullptr, out.data(), 1); }));
    }
  }
#if defined(CIPHERFUSE_HAVE_AVX2)
  if (cf::avx512_vnni_available()) {
    x[5] = int64_t{1} << 15;  // the VNNI kernel's domain is |x| < 2^15
    CHECK(throws_argument_error(
        [&] { cf::conv_direct_avx512_vnni(s, x.data(), kern.data(), nullptr, out.data(), 1); }));
    x[5] = (int64_t{1} << 15) - 1;
    cf::conv_direct_avx512_vnni(s, x.data(), kern.data(), nullptr, out.data(), 1);
    CHECK(out == naive_conv(s, x, kern, nullptr));
  }
#endif
  x[5] = int64_t{1} << 40;  // the patch bound's domain is |x| < 2^40
  CHECK(throws_argument_error([&] { (void)cf::conv_patch_l1_max(s, x.data(), 1); }));
  x[5] = -(int64_t{1} << 40);
  CHECK(throws_argument_error([&] { (void)cf::conv_patch_l1_max(s, x.data(), 1); }));
  x[5] = (int64_t{1} << 40) - 1;
  CHECK(cf::conv_patch_l1_max(s, x.data(), 1) == (uint64_t{1} << 40) - 1 + 8);
}

int main() {
  test_isa_select();
  test_decompose();
  for (int64_t bound :
       std::vector<int64_t>{0, 1, 255, 1000, 65535, int64_t{1} << 24, int64_t{1} << 40}) {
    test_gemm(13, 300, 17, bound, false);
    test_gemm(7, 1, 9, bound, true);
  }
  test_gemm(0, 5, 3, 1, false);
  test_gemm(6, 0, 8, 1, false);
  test_gemm(97, 517, 33, 3, true);
  test_gemm(2, 2600, 130, 1, false);
  // Up to the narrow crossover (AVX-512: 64 columns, AVX2: 12, NEON: 4) the SIMD drivers
  // take the narrow path (chunks of <= 8 columns): every column count, row counts that
  // leave a tail after the row blocks, k not a multiple of the lanes; n = 65 is a float64
  // GEMM shape everywhere.
  test_gemm(50, 300, 1, 1, false);
  test_gemm(50, 300, 4, 7, true);
  for (int64_t n = 1; n <= 65; ++n) {
    test_gemm(37, 2561, n, 1, false);                    // the encryption shape, ternary r
    test_gemm(19, 67, n, int64_t{1} << 40, n % 2 == 0);  // the largest small operand
  }
  test_gemm(5, 0, 1, 1, false);
  test_gemm(1, 300, 50, 3, false);
  test_gemm(3, 300, 5, 3, false);
  test_keyswitch();
  test_tensor_round();
  test_chacha20();
  test_parallel_for();
  test_seeded_conv(3, 28, 28, 1, 5, 5, 32, 1, true, true, 255);  // Table VI first conv
  test_seeded_conv(2, 9, 7, 3, 3, 2, 20, 2, true, false, 1000);  // 16 + 4 filters, stride 2
  test_seeded_conv(2, 8, 8, 2, 3, 3, 5, 1, false, true, (int64_t{1} << 31) - 1);  // remainder
  test_seeded_conv(1, 6, 6, 4, 1, 1, 3, 3, true, true, 7);         // fewer filters than lanes
  test_seeded_conv(4, 1, 1, 100, 1, 1, 33, 1, false, true, 127);   // dense as a 1x1 conv
  test_seeded_conv(2, 11, 13, 2, 3, 3, 64, 2, true, true, 1000);   // paired pixels, stride 2
  test_seeded_conv(2, 12, 17, 1, 4, 3, 40, 3, false, false, 255);  // 32 paired + 8, stride 3
  test_seeded_conv_rejects();
  test_seeded_finish(3, 28, 28, 32, 30, true, 2, 2, 2, 2);  // Table VI first block
  test_seeded_finish(2, 7, 9, 5, 2, false, 3, 2, 1, 2);     // overlapping windows, tau = 2
  test_seeded_finish(1, 6, 6, 4, 62, false, 6, 6, 1, 1);    // tau = 62: the sum wraps
  test_seeded_finish(9, 3, 3, 1, 40, true, 1, 1, 1, 1);     // no pooling, one filter
  test_seeded_finish(0, 5, 5, 3, 20, true, 2, 2, 2, 2);     // no images
  test_seeded_finish_rejects();
  //                 n   h   w  c kh kw  f sh sw same  pool     xbound kbound zero_high
  test_limb_block({3, 28, 28, 1, 5, 5, 32, 1, 1, true, 2, 2, 2, 2, 1000, 600, false});  // Table VI
  test_limb_block({2, 9, 11, 3, 3, 2, 20, 2, 1, true, 3, 2, 1, 2, 255, 40, false});
  test_limb_block({2, 10, 7, 2, 5, 3, 7, 1, 3, false, 1, 1, 1, 1, 100, 9, false});  // no pooling
  test_limb_block({4, 8, 8, 1, 3, 3, 16, 1, 1, true, 2, 2, 2, 2, 3, 1, true});      // H = 0
  test_limb_block({1, 5, 13, 2, 2, 4, 33, 1, 2, true, 2, 3, 2, 1, 1000, 100, false});
  test_limb_block({0, 6, 6, 1, 3, 3, 8, 1, 1, true, 2, 2, 2, 2, 10, 10, false});       // no images
  test_limb_block({5, 4, 4, 1, 4, 4, 1, 1, 1, false, 1, 1, 1, 1, 1000, 1000, false});  // 1x1 out
  test_limb_block({4, 28, 28, 1, 5, 5, 32, 1, 1, true, 2, 2, 2, 2, 1000, 600, false, 1});
  test_limb_block({3, 12, 10, 2, 3, 3, 16, 2, 1, true, 2, 2, 2, 2, 1000, 100, false, 1});
  test_limb_block({3, 12, 10, 1, 3, 3, 24, 1, 1, true, 2, 2, 2, 2, 1000, 100, false, 2});
  test_limb_block({2, 9, 9, 3, 5, 5, 9, 1, 1, false, 2, 2, 1, 1, 1000, 100, true, 2});
  test_limb_block({2, 10, 10, 1, 3, 3, 5, 1, 1, true, 8, 8, 1, 2, 1000, 600, false});  // int64 pool
  test_limb_block({3, 11, 12, 1, 3, 3, 20, 1, 1, true, 2, 2, 3, 3, 1000, 300, false, 1});  // gaps
  test_limb_block({2, 9, 13, 2, 3, 2, 17, 1, 1, false, 1, 2, 2, 3, 1000, 300, false});     // gaps
  test_limb_block_declines_and_rejects();
  test_limb_out_rejects_bad_outputs();
  const int64_t big = int64_t{1} << 40;
  const int64_t top = std::numeric_limits<int64_t>::max();
  for (const ConvCase& t : std::vector<ConvCase>{
           {3, 28, 28, 1, 5, 5, 64, 1, 1, true, true, 1000, 0},  // Table VI, element-wise k = 1
           {2, 28, 28, 1, 5, 5, 64, 1, 1, true, true, 1000, 2},  // every word 2^64 - 1
           {2, 9, 9, 1, 5, 5, 64, 1, 1, true, true, 1000, 1},    // every word 0
           {2, 9, 9, 2, 5, 5, 33, 1, 1, true, false, 1000, 3},   // alternating 0 / 2^64 - 1
           {2, 9, 7, 3, 3, 2, 20, 2, 2, true, false, 1000, 0},   // Cin 3, stride 2
           {2, 12, 17, 1, 4, 3, 40, 3, 2, false, true, 255, 0},  // VALID, strides 3 x 2
           {1, 8, 8, 2, 3, 3, 5, 1, 1, false, true, 1, 0},       // fewer filters than lanes
           {0, 5, 5, 1, 3, 3, 7, 1, 1, true, true, 9, 0},        // no images
           {1, 1, 1, 1, 1, 1, 1, 1, 1, true, true, 3, 0},        // 1 x 1 everything
           {4, 1, 1, 100, 1, 1, 33, 1, 1, false, true, 127, 0},  // dense as a 1x1 conv
           // Fused path: 2 limbs, one k-block. General path: the rest.
           {2, 6, 6, 64, 3, 3, 18, 1, 1, true, true, 255, 0},      // 576 taps: k-blocks of 256
           {2, 6, 5, 16, 3, 3, 20, 1, 1, true, true, 1 << 12, 0},  // 2 limbs, k-blocks of 64
           {2, 7, 5, 3, 3, 3, 24, 1, 1, true, true, 1 << 14, 0},   // 3 limbs
           {2, 7, 5, 3, 3, 3, 24, 1, 1, true, true, 1 << 18, 0},   // 3 limbs
           {2, 7, 5, 3, 3, 3, 24, 2, 1, true, true, 1 << 24, 0},   // 4 limbs
           // VNNI: |x| < 2^15, int32 sums exact for one tap pair per block only.
           {2, 7, 5, 3, 3, 3, 24, 1, 1, true, true, (1 << 15) - 1, 2},
           {2, 5, 6, 1, 3, 3, 5, 1, 1, true, true, 1 << 14, 3},
           {2, 7, 5, 3, 3, 3, 17, 1, 2, true, true, (int64_t{1} << 31) - 1, 2},
           {1, 6, 5, 2, 3, 3, 9, 1, 1, true, true, big - 1, 0},  // scalar fallback
           {1, 6, 5, 2, 3, 3, 9, 1, 1, true, true, top, 2},      // the int64 extremes wrap
       }) {
    test_conv_direct(t);
  }
  for (const ConvCase& t : std::vector<ConvCase>{
           {5, 28, 28, 1, 5, 5, 1, 1, 1, true, true, 1000, 0},
           {3, 9, 7, 3, 3, 2, 1, 2, 2, true, true, big - 1, 0},
           {3, 12, 17, 2, 4, 3, 1, 3, 2, false, true, 255, 0},
           {0, 5, 5, 1, 3, 3, 1, 1, 1, true, true, 9, 0},
       }) {
    test_conv_patch_l1(t);
  }
  test_conv_direct_rejects();
  return cf_test::report("test_he");
}
