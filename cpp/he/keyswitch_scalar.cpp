// Scalar reference key switch (portable C++; the SIMD paths must match it).
#include "he/keyswitch_driver.hpp"

namespace cf {

namespace {

struct ScalarDot {
  static void prepare(uint64_t*, int64_t) {}
  static void dot4(const uint64_t* const m[4], const uint64_t* d, int64_t len, uint64_t acc[4]) {
    for (int64_t j = 0; j < len; ++j) {
      acc[0] += m[0][j] * d[j];
      acc[1] += m[1][j] * d[j];
      acc[2] += m[2][j] * d[j];
      acc[3] += m[3][j] * d[j];
    }
  }
  static void dot2(const uint64_t* const m[2], const uint64_t* d, int64_t len, uint64_t acc[2]) {
    for (int64_t j = 0; j < len; ++j) {
      acc[0] += m[0][j] * d[j];
      acc[1] += m[1][j] * d[j];
    }
  }
  static void dot1(const uint64_t* m, const uint64_t* d, int64_t len, uint64_t& acc) {
    for (int64_t j = 0; j < len; ++j) acc += m[j] * d[j];
  }
  static void decompose(const uint64_t* c, int64_t n, int base_bits, uint64_t* out) {
    cf::decompose(c, n, base_bits, out);
  }
};

}  // namespace

void keyswitch_scalar(const uint64_t* M, int64_t rows, int64_t n, int base_bits, int skip_low,
                      const uint64_t* c, uint64_t* out, int threads) {
  keyswitch_driver<ScalarDot>(M, rows, n, base_bits, skip_low, c, out, threads);
}

}  // namespace cf
