// pybind11 bindings of the fused limb first block (cpp/he/limb_kernel.hpp). Wiring only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "he/kernels.hpp"
#include "he/limb_kernel.hpp"

namespace py = pybind11;
using cfbind::I64Array;
using cfbind::typed_nd;
using cfbind::without_gil;

namespace {

py::tuple limb_block(const py::array& x_in, const py::array& kern_in, const py::array& offsets_in,
                     const py::array& bias_in, int64_t stride_h, int64_t stride_w, int64_t pad_top,
                     int64_t pad_bottom, int64_t pad_left, int64_t pad_right, int64_t pool_h,
                     int64_t pool_w, int64_t pool_sh, int64_t pool_sw, const std::string& isa,
                     int threads, const std::optional<py::array>& out_in, int64_t scale,
                     bool tails) {
  const I64Array x = typed_nd<int64_t>(x_in, "x", "int64", 4);
  const I64Array kern = typed_nd<int64_t>(kern_in, "kern", "int64", 5);
  const I64Array offsets = typed_nd<int64_t>(offsets_in, "offsets", "int64", 1);
  const I64Array bias = typed_nd<int64_t>(bias_in, "bias", "int64", 2);
  if (kern.shape(0) != 3 || kern.shape(3) != x.shape(3) || offsets.shape(0) != 3 ||
      bias.shape(0) != 3 || bias.shape(1) != kern.shape(4)) {
    throw cf::KernelArgumentError(
        "limb_block: kern must be (3, kh, kw, C, F) with C the channels of x, offsets (3,) "
        "and bias (3, F)");
  }
  cf::LimbShape s{x.shape(0),
                  x.shape(1),
                  x.shape(2),
                  x.shape(3),
                  kern.shape(1),
                  kern.shape(2),
                  kern.shape(4),
                  stride_h,
                  stride_w,
                  pad_top,
                  pad_bottom,
                  pad_left,
                  pad_right,
                  pool_h,
                  pool_w,
                  pool_sh,
                  pool_sw,
                  0,
                  0,
                  0,
                  0};
  cf::check_limb_shape(s);
  const cf::Isa which = cf::isa_from_name(isa);
  // scale == 0: int64 features; scale >= 1: float32 features / scale (cf::LimbOut).
  if (scale < 0 || scale >= cf::kLimbExact) {
    throw cf::KernelArgumentError("limb_block: scale must be 0 (int64 output) or in [1, 2^24)");
  }
  const bool quotients = scale > 0;
  const std::vector<py::ssize_t> shape{s.n, s.pooled_h, s.pooled_w, s.f};
  py::array out;
  if (out_in) {  // the caller's buffer (e.g. a slice of the whole batch's features)
    out = quotients ? py::array(typed_nd<float>(*out_in, "out", "float32", 4))
                    : py::array(typed_nd<int64_t>(*out_in, "out", "int64", 4));
    if (out.shape(0) != s.n || out.shape(1) != s.pooled_h || out.shape(2) != s.pooled_w ||
        out.shape(3) != s.f || !out.writeable()) {
      throw cf::KernelArgumentError("limb_block: out must be a writeable (" + std::to_string(s.n) +
                                    ", " + std::to_string(s.pooled_h) + ", " +
                                    std::to_string(s.pooled_w) + ", " + std::to_string(s.f) + ") " +
                                    (quotients ? "float32" : "int64") + " array");
    }
  } else {
    out = quotients ? py::array(py::array_t<float>(shape)) : py::array(I64Array(shape));
  }
  cf::LimbOut sink;
  if (quotients) {
    sink.quotients = static_cast<float*>(out.mutable_data());
    sink.scale = static_cast<float>(scale);
  } else {
    sink.words = static_cast<int64_t*>(out.mutable_data());
  }
  const cf::LimbStats st = without_gil([&] {
    return cf::limb_block(which, s, x.data(), kern.data(), offsets.data(), bias.data(), sink,
                          threads, tails);
  });
  py::object features = st.computed ? py::object(out) : py::object(py::none());
  return py::make_tuple(features, st.l1, st.tail_min, st.tail_max, st.pooled_tail_max);
}

}  // namespace

void register_limb(py::module_& m) {
  m.def("limb_block", &limb_block, py::arg("x"), py::arg("kern"), py::arg("offsets"),
        py::arg("bias"), py::kw_only(), py::arg("stride_h") = 1, py::arg("stride_w") = 1,
        py::arg("pad_top") = 0, py::arg("pad_bottom") = 0, py::arg("pad_left") = 0,
        py::arg("pad_right") = 0, py::arg("pool_h") = 1, py::arg("pool_w") = 1,
        py::arg("pool_sh") = 1, py::arg("pool_sw") = 1, py::arg("isa") = "auto",
        py::arg("threads") = 0, py::arg("out") = py::none(), py::arg("scale") = 0,
        py::arg("tails") = true,
        "The fused limb first block (cpp/he/limb_kernel.hpp) on int64 NHWC images x, limb\n"
        "kernels kern (3, kh, kw, C, F), offsets (3,) and bias (3, F), all int64 below 2^24.\n"
        "Returns (features, l1, tail_min, tail_max, pooled_tail_max): features int64\n"
        "(n, H'', W'', F), or with scale in [1, 2^24) float32 features / scale rounded once\n"
        "(written into `out` when given, C-contiguous of that shape and dtype), or None when\n"
        "an exactness bound fails (out's contents then unspecified). tails=False skips the\n"
        "tail family (same features; the three tail statistics are then 0, not measured).");
}
