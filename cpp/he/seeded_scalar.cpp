// Scalar reference of the seeded convolution: wrapping uint64 multiply-add.
#include "he/parallel.hpp"
#include "he/seeded.hpp"

namespace cf {

void seeded_conv_scalar(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, uint64_t* out, int threads) {
  parallel_for(s.n * s.out_h, threads, 1, [&](int64_t r0, int64_t r1) {
    for_each_output(
        s, r0, r1,
        [&](int64_t pix, int64_t ky0, int64_t ky1, int64_t kx0, int64_t kx1, int64_t in_base) {
          uint64_t* acc = out + pix * s.f;
          for (int64_t o = 0; o < s.f; ++o) acc[o] = bias ? bias[o] : 0;
          for (int64_t ky = ky0; ky < ky1; ++ky) {
            for (int64_t kx = kx0; kx < kx1; ++kx) {
              const int64_t* xp = x + in_base + (ky * s.w + kx) * s.c;
              const uint64_t* kp = kern + (ky * s.kw + kx) * s.c * s.f;
              for (int64_t ch = 0; ch < s.c; ++ch) {
                const uint64_t v = static_cast<uint64_t>(xp[ch]);
                const uint64_t* row = kp + ch * s.f;
                for (int64_t o = 0; o < s.f; ++o) acc[o] += v * row[o];
              }
            }
          }
        });
  });
}

}  // namespace cf
