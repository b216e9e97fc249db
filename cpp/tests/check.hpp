// The checks shared by the C++ unit tests (test_he.cpp, test_mpc.cpp): CHECK
// counts a passed or failed condition (a failure prints its file, line and text
// and the test binary exits non-zero), throws_argument_error tells whether a
// call raised cf::KernelArgumentError, available_isas lists the ISAs this CPU
// and build run (scalar first) so every SIMD path is compared with the scalar one.
#pragma once

#include <cstdio>
#include <vector>

#include "he/kernels.hpp"

namespace cf_test {

inline int g_passed = 0;
inline int g_failed = 0;

/// "<name>: N passed, M failed" (plus `extra`) on stdout; the process exit status.
inline int report(const char* name, const char* extra = "") {
  std::printf("%s: %d passed, %d failed%s\n", name, g_passed, g_failed, extra);
  return g_failed == 0 ? 0 : 1;
}

template <typename F>
bool throws_argument_error(F&& f) {
  try {
    f();
  } catch (const cf::KernelArgumentError&) {
    return true;
  }
  return false;
}

inline std::vector<cf::Isa> available_isas() {
  std::vector<cf::Isa> out;
  for (cf::Isa isa : {cf::Isa::Scalar, cf::Isa::Avx2, cf::Isa::Avx512, cf::Isa::Neon}) {
    if (cf::isa_available(isa)) out.push_back(isa);
  }
  return out;
}

}  // namespace cf_test

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (cond) {                                                              \
      ++cf_test::g_passed;                                                   \
    } else {                                                                 \
      ++cf_test::g_failed;                                                   \
      std::fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)
