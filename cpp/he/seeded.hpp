// Seeded packed encryption of a weight matrix (python/cipherfuse/he/seeded.py):
// the evaluator only computes the b-parts, i.e. the plaintext layer in uint64
// arithmetic mod 2^64. This header declares the convolution kernel that does
// it for a filter bank (NHWC images, kernels kh x kw x C x F); a dense layer is
// the existing gemm_small_wide.
#pragma once

#include <cstdint>

#include "he/kernels.hpp"

namespace cf {

/// Geometry of one seeded convolution. Output pixel (oy, ox) reads input pixel
/// (oy*stride_h - pad_top + ky, ox*stride_w - pad_left + kx); taps outside the
/// image read zero (they are skipped).
struct ConvShape {
  int64_t n, h, w, c;  // images: n x h x w x c
  int64_t kh, kw, f;   // kernels: kh x kw x c x f
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_left;
  int64_t out_h, out_w;  // output: n x out_h x out_w x f
};

/// out[n,oy,ox,:] = bias + sum_{ky,kx,c} x[n,iy,ix,c] * kern[ky,kx,c,:]  (mod 2^64).
/// x: int64 images with |x| < 2^31 (checked); kern: uint64 words; bias: f words or
/// nullptr. All arrays C-contiguous. Bit-identical across ISAs (tested).
void seeded_conv(Isa isa, const ConvShape& s, const int64_t* x, const uint64_t* kern,
                 const uint64_t* bias, uint64_t* out, int threads);

/// Scalar reference: wrapping uint64 multiply-add, no splitting.
void seeded_conv_scalar(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, uint64_t* out, int threads);
#if defined(CIPHERFUSE_HAVE_AVX2)
void seeded_conv_avx2(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads);
void seeded_conv_avx512(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, uint64_t* out, int threads);
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
void seeded_conv_neon(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads);
#endif

/// Checks the geometry of `s` and |x| < 2^31 (KernelArgumentError otherwise).
void check_seeded_conv(const ConvShape& s, const int64_t* x);
/// seeded_conv without the checks: the ISA's kernel, called by the fused
/// decrypt-finish on blocks of images whose geometry was checked once.
void seeded_conv_unchecked(Isa isa, const ConvShape& s, const int64_t* x, const uint64_t* kern,
                           const uint64_t* bias, uint64_t* out, int threads);

// ---------------------------------------------------------------- decrypt finish
/// The key holder's last step for a seeded filter bank followed by a 2-D sum
/// pooling (python/cipherfuse/he/seeded.py, SeededDecryptor):
///   y = int64(a + b + 2^(63-tau)) >> (64 - tau)   (rounding by w = 2^(64-tau)),
///   y = max(y, 0) if relu, then out = the sum of y over each VALID pool window
/// (window pool_h x pool_w, stride pool_sh x pool_sw), all in one pass.
/// The pooling sum wraps mod 2^64 like numpy's int64 sum. A 1x1 window with
/// stride 1 is "no pooling".
struct FinishShape {
  int64_t n, h, w, f;  // a and b: n x h x w x f uint64, C-contiguous
  int tau;             // plaintext bits, 2..62
  bool relu;
  int64_t pool_h, pool_w;    // pooling window
  int64_t pool_sh, pool_sw;  // pooling stride
  int64_t out_h, out_w;      // (h - pool_h) / pool_sh + 1, (w - pool_w) / pool_sw + 1
};

/// Fills out_h and out_w of `s` and checks every field (KernelArgumentError).
void check_finish_shape(FinishShape& s);
/// out (n x out_h x out_w x f int64) from the a-terms and b-parts; threads over images.
void decrypt_finish(const FinishShape& s, const uint64_t* a, const uint64_t* b, int64_t* out,
                    int threads);
/// The same with the a-term computed on the fly: a = seeded_conv(conv, x, kern, bias), one
/// block of images at a time into a per-thread buffer, so the n x h x w x f a-term tensor is
/// never materialised. `conv` and `fin` must agree on n, out_h = h, out_w = w and f.
void seeded_conv_finish(Isa isa, const ConvShape& conv, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, const FinishShape& fin, const uint64_t* b,
                        int64_t* out, int threads);
/// One image block of decrypt_finish (a and b point at image 0 of the block,
/// out at its first output); the reference the threaded paths call.
void decrypt_finish_images(const FinishShape& s, const uint64_t* a, const uint64_t* b,
                           int64_t images, int64_t* out);

/// The SIMD paths multiply a 64-bit word by a small x as two signed 32 x 32 -> 64
/// products: word = lo + 2^32 hi with lo the sign-extended low half, so
/// x * word = x*lo + 2^32 * (x*hi mod 2^32)  (mod 2^64), exact for |x| < 2^31.
inline int64_t split_lo(uint64_t word) {
  return static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(word)));
}
inline int64_t split_hi(uint64_t word) {
  const uint64_t rest = word - static_cast<uint64_t>(split_lo(word));
  return static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(rest >> 32)));
}

/// Calls body(img, oy, ox, ky0, ky1, kx0, kx1, in_base) for every output pixel
/// of rows [r0, r1) of the flattened (n * out_h) output rows; [ky0, ky1) x
/// [kx0, kx1) are the taps inside the image, in_base the offset of tap (0, 0).
template <class Body>
inline void for_each_output(const ConvShape& s, int64_t r0, int64_t r1, Body&& body) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t img = r / s.out_h;
    const int64_t oy = r % s.out_h;
    const int64_t iy0 = oy * s.stride_h - s.pad_top;
    const int64_t ky0 = iy0 < 0 ? -iy0 : 0;
    const int64_t ky1 = iy0 + s.kh > s.h ? s.h - iy0 : s.kh;
    for (int64_t ox = 0; ox < s.out_w; ++ox) {
      const int64_t ix0 = ox * s.stride_w - s.pad_left;
      const int64_t kx0 = ix0 < 0 ? -ix0 : 0;
      const int64_t kx1 = ix0 + s.kw > s.w ? s.w - ix0 : s.kw;
      const int64_t in_base = ((img * s.h + iy0) * s.w + ix0) * s.c;
      body(r * s.out_w + ox, ky0, ky1, kx0, kx1, in_base);
    }
  }
}

}  // namespace cf
