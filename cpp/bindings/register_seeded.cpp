// pybind11 bindings of the seeded packed layout's kernels (cpp/he/seeded.hpp): the
// seeded convolution's b-part, the decrypt finish, and both fused. Wiring only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings/bindings.hpp"
#include "he/kernels.hpp"
#include "he/seeded.hpp"

namespace py = pybind11;
using cfbind::I64Array;
using cfbind::optional_bias;
using cfbind::require_c_contiguous;
using cfbind::typed_4d;
using cfbind::U64Array;
using cfbind::without_gil;

namespace {

U64Array seeded_conv(const I64Array& x, const U64Array& kern, const std::optional<U64Array>& bias,
                     int64_t stride_h, int64_t stride_w, int64_t pad_top, int64_t pad_left,
                     int64_t out_h, int64_t out_w, const std::string& isa, int threads) {
  require_c_contiguous(x, "x", 4);
  require_c_contiguous(kern, "kern", 4);
  if (kern.shape(2) != x.shape(3)) {
    throw cf::KernelArgumentError("seeded_conv: kern has " + std::to_string(kern.shape(2)) +
                                  " input channels, the images have " + std::to_string(x.shape(3)));
  }
  const uint64_t* bias_ptr = nullptr;
  if (bias) {
    require_c_contiguous(*bias, "bias", 1);
    if (bias->shape(0) != kern.shape(3)) {
      throw cf::KernelArgumentError("seeded_conv: bias must have one word per filter");
    }
    bias_ptr = bias->data();
  }
  const cf::ConvShape s{x.shape(0),    x.shape(1),    x.shape(2), x.shape(3), kern.shape(0),
                        kern.shape(1), kern.shape(3), stride_h,   stride_w,   pad_top,
                        pad_left,      out_h,         out_w};
  if (out_h < 1 || out_w < 1) throw cf::KernelArgumentError("seeded_conv: empty output");
  U64Array out({x.shape(0), static_cast<py::ssize_t>(out_h), static_cast<py::ssize_t>(out_w),
                kern.shape(3)});
  const cf::Isa which = cf::isa_from_name(isa);
  uint64_t* dst = out.mutable_data();
  without_gil([&] { cf::seeded_conv(which, s, x.data(), kern.data(), bias_ptr, dst, threads); });
  return out;
}

// ------------------------------------------------------------ decrypt finish
bool parse_activation(const std::string& activation) {
  if (activation == "relu") return true;
  if (activation == "none") return false;
  throw cf::KernelArgumentError("activation must be 'relu' or 'none', got '" + activation + "'");
}

cf::FinishShape finish_shape(const U64Array& b, int tau, const std::string& activation,
                             int64_t pool_h, int64_t pool_w, int64_t pool_sh, int64_t pool_sw) {
  cf::FinishShape s{
      b.shape(0), b.shape(1), b.shape(2), b.shape(3), tau, parse_activation(activation),
      pool_h,     pool_w,     pool_sh,    pool_sw,    0,   0};
  cf::check_finish_shape(s);
  return s;
}

I64Array decrypt_finish(const py::array& a_in, const py::array& b_in, int tau,
                        const std::string& activation, int64_t pool_h, int64_t pool_w,
                        int64_t pool_sh, int64_t pool_sw, int threads) {
  const U64Array a = typed_4d<uint64_t>(a_in, "a", "uint64");
  const U64Array b = typed_4d<uint64_t>(b_in, "b", "uint64");
  for (py::ssize_t i = 0; i < 4; ++i) {
    if (a.shape(i) != b.shape(i)) {
      throw cf::KernelArgumentError("decrypt_finish: a and b must have the same shape");
    }
  }
  const cf::FinishShape s = finish_shape(b, tau, activation, pool_h, pool_w, pool_sh, pool_sw);
  I64Array out({s.n, s.out_h, s.out_w, s.f});
  int64_t* dst = out.mutable_data();
  without_gil([&] { cf::decrypt_finish(s, a.data(), b.data(), dst, threads); });
  return out;
}

I64Array seeded_conv_finish(const py::array& x_in, const py::array& kern_in,
                            const std::optional<py::array>& bias_in, const py::array& b_in, int tau,
                            int64_t stride_h, int64_t stride_w, int64_t pad_top, int64_t pad_left,
                            const std::string& activation, int64_t pool_h, int64_t pool_w,
                            int64_t pool_sh, int64_t pool_sw, const std::string& isa, int threads) {
  const I64Array x = typed_4d<int64_t>(x_in, "x", "int64");
  const U64Array kern = typed_4d<uint64_t>(kern_in, "kern", "uint64");
  const U64Array b = typed_4d<uint64_t>(b_in, "b", "uint64");
  if (kern.shape(2) != x.shape(3) || kern.shape(3) != b.shape(3) || x.shape(0) != b.shape(0)) {
    throw cf::KernelArgumentError(
        "seeded_conv_finish: kern must be (kh, kw, C, F) with C the channels of x and F the "
        "last axis of b, and x and b must hold the same number of images");
  }
  const uint64_t* bias_ptr =
      optional_bias(bias_in, kern.shape(3), "bias must be uint64",
                    "seeded_conv_finish: bias must have one word per filter");
  const cf::FinishShape fin = finish_shape(b, tau, activation, pool_h, pool_w, pool_sh, pool_sw);
  const cf::ConvShape conv{x.shape(0),    x.shape(1),    x.shape(2), x.shape(3), kern.shape(0),
                           kern.shape(1), kern.shape(3), stride_h,   stride_w,   pad_top,
                           pad_left,      b.shape(1),    b.shape(2)};
  I64Array out({fin.n, fin.out_h, fin.out_w, fin.f});
  const cf::Isa which = cf::isa_from_name(isa);
  int64_t* dst = out.mutable_data();
  without_gil([&] {
    cf::seeded_conv_finish(which, conv, x.data(), kern.data(), bias_ptr, fin, b.data(), dst,
                           threads);
  });
  return out;
}

}  // namespace

void register_seeded(py::module_& m) {
  m.def("seeded_conv", &seeded_conv, py::arg("x").noconvert(), py::arg("kern").noconvert(),
        py::arg("bias").noconvert() = py::none(), py::kw_only(), py::arg("stride_h") = 1,
        py::arg("stride_w") = 1, py::arg("pad_top") = 0, py::arg("pad_left") = 0,
        py::arg("out_h") = 0, py::arg("out_w") = 0, py::arg("isa") = "auto", py::arg("threads") = 0,
        "Seeded convolution b-part: bias + conv(x, kern) mod 2^64 for int64 NHWC images\n"
        "(|x| < 2^31) and uint64 kernels (kh, kw, C, F); taps outside the image are zero.");
  m.def("decrypt_finish", &decrypt_finish, py::arg("a"), py::arg("b"), py::arg("tau"),
        py::kw_only(), py::arg("activation") = "none", py::arg("pool_h") = 1, py::arg("pool_w") = 1,
        py::arg("pool_sh") = 1, py::arg("pool_sw") = 1, py::arg("threads") = 0,
        "Seeded decryption finish in one pass over uint64 (n, H, W, F) a-terms and b-parts:\n"
        "y = int64(a + b + 2^(63-tau)) >> (64-tau), ReLU if activation == 'relu', then the\n"
        "sum over VALID pool windows (pool_h x pool_w, stride pool_sh x pool_sw; 1x1 = none),\n"
        "wrapping like numpy's int64 sum. Returns int64 (n, H'', W'', F).");
  m.def("seeded_conv_finish", &seeded_conv_finish, py::arg("x"), py::arg("kern"), py::arg("bias"),
        py::arg("b"), py::arg("tau"), py::kw_only(), py::arg("stride_h") = 1,
        py::arg("stride_w") = 1, py::arg("pad_top") = 0, py::arg("pad_left") = 0,
        py::arg("activation") = "none", py::arg("pool_h") = 1, py::arg("pool_w") = 1,
        py::arg("pool_sh") = 1, py::arg("pool_sw") = 1, py::arg("isa") = "auto",
        py::arg("threads") = 0,
        "decrypt_finish(seeded_conv(x, kern, bias, ...), b, ...) with the a-term computed one\n"
        "block of images at a time (never materialised); the conv output size is b's H x W.");
}
