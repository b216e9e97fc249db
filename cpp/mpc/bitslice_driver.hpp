// The 64 x 64 bit-matrix transpose behind bitslice/unbitslice, generic over a
// vector of V independent matrices (lane v of r[i] is row i of matrix v).
//
// Recursive block transpose (Hacker's Delight, transpose64 with least
// significant bit first): six stages; stage J swaps the upper-right and
// lower-left J x J sub-blocks of every 2J x 2J diagonal block, pairing rows k
// and k + J. An Ops type provides V (lanes), the vector type T, and
//   static T shr<J>(T), shl<J>(T), bxor(T, T), band(T, T), splat(uint64_t).
#pragma once

#include <cstdint>

namespace cf {
namespace mpc {

template <class Ops, int J>
inline void transpose_stage(typename Ops::T* r) {
  constexpr uint64_t kMasks[] = {0,
                                 0x5555555555555555ULL,
                                 0x3333333333333333ULL,
                                 0,
                                 0x0F0F0F0F0F0F0F0FULL,
                                 0,
                                 0,
                                 0,
                                 0x00FF00FF00FF00FFULL,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0x0000FFFF0000FFFFULL,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0x00000000FFFFFFFFULL};
  const typename Ops::T mask = Ops::splat(kMasks[J]);
  for (int base = 0; base < 64; base += 2 * J) {
    for (int k = base; k < base + J; ++k) {
      const typename Ops::T t = Ops::band(Ops::bxor(Ops::template shr<J>(r[k]), r[k + J]), mask);
      r[k + J] = Ops::bxor(r[k + J], t);
      r[k] = Ops::bxor(r[k], Ops::template shl<J>(t));
    }
  }
}

/// Transposes V 64 x 64 bit matrices in place (row i of matrix v: lane v of r[i]).
template <class Ops>
inline void transpose64_lanes(typename Ops::T* r) {
  transpose_stage<Ops, 32>(r);
  transpose_stage<Ops, 16>(r);
  transpose_stage<Ops, 8>(r);
  transpose_stage<Ops, 4>(r);
  transpose_stage<Ops, 2>(r);
  transpose_stage<Ops, 1>(r);
}

/// Plain 64-bit words: one matrix per "vector" (the scalar reference).
struct ScalarOps {
  static constexpr int V = 1;
  using T = uint64_t;
  template <int J>
  static T shr(T a) {
    return a >> J;
  }
  template <int J>
  static T shl(T a) {
    return a << J;
  }
  static T bxor(T a, T b) { return a ^ b; }
  static T band(T a, T b) { return a & b; }
  static T splat(uint64_t v) { return v; }
};

}  // namespace mpc
}  // namespace cf
