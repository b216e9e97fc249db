// Run-time ISA selection, written once: every dispatcher (cpp/he/dispatch.cpp,
// conv.cpp, limb_dispatch.cpp, cpp/mpc/dispatch.cpp) lists its per-ISA kernels
// in an IsaTable and calls isa_select, which checks that the requested ISA is
// available (KernelArgumentError otherwise) and returns its entry, or the
// scalar reference where the table has none. Forced ISAs ("scalar", "avx2",
// "avx512", "neon", see isa_from_name) select exactly that row.
//
//   const IsaTable<decltype(&gemm_wide_small_scalar)> kGemm{
//       gemm_wide_small_scalar, CF_IF_X86(gemm_wide_small_avx2),
//       CF_IF_X86(gemm_wide_small_avx512), CF_IF_NEON(gemm_wide_small_neon)};
//   isa_select(kGemm, isa)(W, S, C, threads);
#pragma once

#include "he/kernels.hpp"

// An entry that exists only in x86-64 (AVX2 / AVX-512) or AArch64 (NEON) builds;
// elsewhere the entry is empty and its name is never seen by the compiler.
#if defined(CIPHERFUSE_HAVE_AVX2)
#define CF_IF_X86(...) __VA_ARGS__
#else
#define CF_IF_X86(...) nullptr
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
#define CF_IF_NEON(...) __VA_ARGS__
#else
#define CF_IF_NEON(...) nullptr
#endif

namespace cf {

/// One entry per ISA (a function pointer, or a pointer to a table of them);
/// an empty (null) entry means "run the scalar reference".
template <typename Entry>
struct IsaTable {
  Entry scalar;
  Entry avx2;
  Entry avx512;
  Entry neon;
};

/// KernelArgumentError unless `isa` is built in and runs on this CPU. The message
/// is "isa 'X' is not available on this CPU/build; use 'auto' or 'scalar'",
/// prefixed by "who: " when `who` is given.
void require_isa_available(Isa isa, const char* who = nullptr);

/// The entry of `table` for `isa`, or the scalar entry where that one is empty;
/// unchecked (for a caller that checked availability once, before a loop).
template <typename Entry>
Entry isa_entry(const IsaTable<Entry>& table, Isa isa) {
  Entry chosen = nullptr;
  switch (isa) {
    case Isa::Scalar:
      break;
    case Isa::Avx2:
      chosen = table.avx2;
      break;
    case Isa::Avx512:
      chosen = table.avx512;
      break;
    case Isa::Neon:
      chosen = table.neon;
      break;
  }
  return chosen != nullptr ? chosen : table.scalar;
}

/// isa_entry after require_isa_available: the dispatch of a kernel entry point.
template <typename Entry>
Entry isa_select(const IsaTable<Entry>& table, Isa isa, const char* who = nullptr) {
  require_isa_available(isa, who);
  return isa_entry(table, isa);
}

}  // namespace cf
