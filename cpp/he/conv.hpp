// Direct 2-D convolution of plaintext integer images with a bank of uint64
// kernel words (the encrypted first layer, python/cipherfuse/he/nn/layers.py):
//
//   out[i, oy, ox, :] = bias + sum_{ky, kx, ch} x[i, iy, ix, ch] * kern[ky, kx, ch, :]  (mod 2^64)
//
// with (iy, ix) = (oy * stride_h - pad_top + ky, ox * stride_w - pad_left + kx);
// taps outside the image read zero. Same geometry (ConvShape) and semantics as
// seeded_conv, but for any |x| < 2^63: the SIMD paths are the exact split-limb
// float64 scheme of the GEMM (gemm_plan.hpp) on patches built per block of
// output pixels from the image (implicit im2col: no patch matrix), and write
// the output once, contiguously, in its final NHWC layout.
#pragma once

#include <cstdint>

#include "he/kernels.hpp"
#include "he/seeded.hpp"

namespace cf {

/// Largest kh * kw * c accepted (so that patch sums of |x| < 2^40 fit 64 bits).
constexpr int64_t kConvMaxTaps = int64_t{1} << 23;

/// Checks the geometry (positive sizes and strides, 0 <= padding < kernel size,
/// every output window starting inside the padded image, at most kConvMaxTaps
/// taps); KernelArgumentError naming the field otherwise.
void check_conv_shape(const ConvShape& s, const char* who);

/// The convolution above; x: n*h*w*c int64, kern: kh*kw*c*f uint64, bias: f words or
/// nullptr, out: n*out_h*out_w*f words. All C-contiguous. Bit-identical across ISAs.
void conv_direct(Isa isa, const ConvShape& s, const int64_t* x, const uint64_t* kern,
                 const uint64_t* bias, uint64_t* out, int threads);

/// Scalar reference: wrapping uint64 multiply-add.
void conv_direct_scalar(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, uint64_t* out, int threads);
#if defined(CIPHERFUSE_HAVE_AVX2)
void conv_direct_avx2(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads);
/// The AVX-512 path: conv_direct_avx512_vnni where the CPU has it and |x| < 2^15,
/// else conv_direct_avx512_fma.
void conv_direct_avx512(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                        const uint64_t* bias, uint64_t* out, int threads);
/// The split-limb float64 FMA kernel (conv_driver.hpp) on 8-lane vectors.
void conv_direct_avx512_fma(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                            const uint64_t* bias, uint64_t* out, int threads);
/// int16 x (four signed 16-bit digits per word) with vpdpwssd; needs
/// avx512_vnni_available() and |x| < 2^15 (KernelArgumentError otherwise).
void conv_direct_avx512_vnni(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                             const uint64_t* bias, uint64_t* out, int threads);
/// True if this CPU has AVX-512 F, DQ, BW and VNNI.
bool avx512_vnni_available();
#endif
#if defined(CIPHERFUSE_HAVE_NEON)
void conv_direct_neon(const ConvShape& s, const int64_t* x, const uint64_t* kern,
                      const uint64_t* bias, uint64_t* out, int threads);
#endif

/// max over output pixels of sum_{taps inside the image, channels} |x|: the largest
/// l1 norm of a patch, which bounds the noise of the convolution (paper Eq. 34).
/// Requires |x| < 2^40 (KernelArgumentError otherwise); s.f is not used.
uint64_t conv_patch_l1_max(const ConvShape& s, const int64_t* x, int threads);

}  // namespace cf
