#include <algorithm>
#include <thread>

#include "he/isa_dispatch.hpp"
#include "he/kernels.hpp"

namespace cf {

bool isa_available(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return true;
    case Isa::Avx2:
#if defined(CIPHERFUSE_HAVE_AVX2)
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
    case Isa::Avx512:
#if defined(CIPHERFUSE_HAVE_AVX2)
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#else
      return false;
#endif
    case Isa::Neon:
#if defined(CIPHERFUSE_HAVE_NEON)
      return true;  // Advanced SIMD is mandatory on AArch64.
#else
      return false;
#endif
  }
  return false;
}

void require_isa_available(Isa isa, const char* who) {
  if (!isa_available(isa)) {
    throw KernelArgumentError((who != nullptr ? std::string(who) + ": " : std::string()) + "isa '" +
                              isa_name(isa) +
                              "' is not available on this CPU/build; use 'auto' or 'scalar'");
  }
}

Isa best_isa() {
  if (isa_available(Isa::Avx512)) return Isa::Avx512;
  if (isa_available(Isa::Avx2)) return Isa::Avx2;
  if (isa_available(Isa::Neon)) return Isa::Neon;
  return Isa::Scalar;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Neon:
      return "neon";
    case Isa::Avx512:
      return "avx512";
  }
  return "unknown";
}

Isa isa_from_name(const std::string& name) {
  if (name == "auto") return best_isa();
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") return Isa::Avx2;
  if (name == "neon") return Isa::Neon;
  if (name == "avx512") return Isa::Avx512;
  throw KernelArgumentError("unknown isa '" + name +
                            "': expected one of auto, scalar, avx2, avx512, neon");
}

int default_threads() {
  const unsigned hc = std::thread::hardware_concurrency();
  return std::max(1, static_cast<int>(hc));
}

}  // namespace cf
