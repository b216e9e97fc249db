// pybind11 bindings of the direct convolution (cpp/he/conv.hpp), used by the
// encrypted first layer and the 3PC linear layers. Wiring only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings/bindings.hpp"
#include "he/conv.hpp"
#include "he/kernels.hpp"

namespace py = pybind11;
using cfbind::I64Array;
using cfbind::optional_bias;
using cfbind::typed_4d;
using cfbind::U64Array;
using cfbind::without_gil;

namespace {

cf::ConvShape conv_shape(const I64Array& x, int64_t kh, int64_t kw, int64_t f, int64_t stride_h,
                         int64_t stride_w, int64_t pad_top, int64_t pad_left, int64_t out_h,
                         int64_t out_w) {
  return {x.shape(0), x.shape(1), x.shape(2), x.shape(3), kh,    kw,   f,
          stride_h,   stride_w,   pad_top,    pad_left,   out_h, out_w};
}

U64Array conv2d_direct(const py::array& x_in, const py::array& kern_in,
                       const std::optional<py::array>& bias_in, int64_t stride_h, int64_t stride_w,
                       int64_t pad_top, int64_t pad_left, int64_t out_h, int64_t out_w,
                       const std::string& isa, int threads) {
  const I64Array x = typed_4d<int64_t>(x_in, "x", "int64");
  const U64Array kern = typed_4d<uint64_t>(kern_in, "kern", "uint64");
  if (kern.shape(2) != x.shape(3)) {
    throw cf::KernelArgumentError("conv2d_direct: kern has " + std::to_string(kern.shape(2)) +
                                  " input channels, the images have " + std::to_string(x.shape(3)));
  }
  const uint64_t* bias_ptr =
      optional_bias(bias_in, kern.shape(3), "conv2d_direct: bias must be uint64",
                    "conv2d_direct: bias must have one word per output column");
  const cf::ConvShape s = conv_shape(x, kern.shape(0), kern.shape(1), kern.shape(3), stride_h,
                                     stride_w, pad_top, pad_left, out_h, out_w);
  cf::check_conv_shape(s, "conv2d_direct");  // before out_h x out_w is allocated
  const cf::Isa which = cf::isa_from_name(isa);
  U64Array out({x.shape(0), static_cast<py::ssize_t>(out_h), static_cast<py::ssize_t>(out_w),
                kern.shape(3)});
  uint64_t* dst = out.mutable_data();
  without_gil([&] { cf::conv_direct(which, s, x.data(), kern.data(), bias_ptr, dst, threads); });
  return out;
}

uint64_t conv2d_patch_l1_max(const py::array& x_in, int64_t kh, int64_t kw, int64_t stride_h,
                             int64_t stride_w, int64_t pad_top, int64_t pad_left, int64_t out_h,
                             int64_t out_w, int threads) {
  const I64Array x = typed_4d<int64_t>(x_in, "x", "int64");
  const cf::ConvShape s =
      conv_shape(x, kh, kw, 1, stride_h, stride_w, pad_top, pad_left, out_h, out_w);
  return without_gil([&] { return cf::conv_patch_l1_max(s, x.data(), threads); });
}

}  // namespace

void register_conv(py::module_& m) {
  m.def("conv2d_direct", &conv2d_direct, py::arg("x"), py::arg("kern"),
        py::arg("bias") = py::none(), py::kw_only(), py::arg("stride_h") = 1,
        py::arg("stride_w") = 1, py::arg("pad_top") = 0, py::arg("pad_left") = 0,
        py::arg("out_h") = 0, py::arg("out_w") = 0, py::arg("isa") = "auto", py::arg("threads") = 0,
        "Direct 2-D convolution bias + conv(x, kern) mod 2^64 of int64 NHWC images x (n, h, w,\n"
        "C) and uint64 kernel words kern (kh, kw, C, F); taps outside the image are zero.\n"
        "Returns uint64 (n, out_h, out_w, F), written once in that layout (no patch matrix).");
  m.def("conv2d_patch_l1_max", &conv2d_patch_l1_max, py::arg("x"), py::arg("kh"), py::arg("kw"),
        py::kw_only(), py::arg("stride_h") = 1, py::arg("stride_w") = 1, py::arg("pad_top") = 0,
        py::arg("pad_left") = 0, py::arg("out_h") = 0, py::arg("out_w") = 0, py::arg("threads") = 0,
        "The largest l1 norm of a conv patch (taps inside the image, all channels) of int64\n"
        "NHWC images with |x| < 2^40: the input factor of the convolution's noise bound.");
}
