// ChaCha20 (RFC 8439) keystream: the pseudo-random generator behind key and
// mask sampling. Deterministic in (key, nonce, counter), so pseudo-random
// parts of keys can be regenerated from a seed.
#pragma once

#include <cstdint>

namespace cf {

/// Writes `nblocks` 64-byte ChaCha20 blocks starting at block `counter`.
/// Throws KernelArgumentError if the 32-bit block counter would wrap.
void chacha20_stream(const uint8_t key[32], const uint8_t nonce[12], uint32_t counter,
                     uint64_t nblocks, uint8_t* out, int threads);

}  // namespace cf
