#include "he/prg.hpp"

#include <cstring>

#include "he/kernels.hpp"
#include "he/parallel.hpp"

namespace cf {

namespace {

inline uint32_t rotl(uint32_t v, int c) { return (v << c) | (v >> (32 - c)); }

inline void quarter(uint32_t& a, uint32_t& b, uint32_t& c, uint32_t& d) {
  a += b;
  d ^= a;
  d = rotl(d, 16);
  c += d;
  b ^= c;
  b = rotl(b, 12);
  a += b;
  d ^= a;
  d = rotl(d, 8);
  c += d;
  b ^= c;
  b = rotl(b, 7);
}

inline uint32_t load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

inline void store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

void block(const uint32_t in[16], uint8_t out[64]) {
  uint32_t x[16];
  std::memcpy(x, in, sizeof(x));
  for (int i = 0; i < 10; ++i) {
    quarter(x[0], x[4], x[8], x[12]);
    quarter(x[1], x[5], x[9], x[13]);
    quarter(x[2], x[6], x[10], x[14]);
    quarter(x[3], x[7], x[11], x[15]);
    quarter(x[0], x[5], x[10], x[15]);
    quarter(x[1], x[6], x[11], x[12]);
    quarter(x[2], x[7], x[8], x[13]);
    quarter(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 16; ++i) store32(out + 4 * i, x[i] + in[i]);
}

}  // namespace

void chacha20_stream(const uint8_t key[32], const uint8_t nonce[12], uint32_t counter,
                     uint64_t nblocks, uint8_t* out, int threads) {
  if (nblocks > (uint64_t{1} << 32) - counter) {
    throw KernelArgumentError("chacha20: the 32-bit block counter would wrap; use a new nonce");
  }
  uint32_t state[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u};
  for (int i = 0; i < 8; ++i) state[4 + i] = load32(key + 4 * i);
  for (int i = 0; i < 3; ++i) state[13 + i] = load32(nonce + 4 * i);
  if (threads < 1) threads = default_threads();
  parallel_for(static_cast<int64_t>(nblocks), threads, 1024, [&](int64_t b0, int64_t b1) {
    uint32_t s[16];
    std::memcpy(s, state, sizeof(s));
    for (int64_t b = b0; b < b1; ++b) {
      s[12] = counter + static_cast<uint32_t>(b);
      block(s, out + 64 * b);
    }
  });
}

}  // namespace cf
