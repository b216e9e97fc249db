// pybind11 bindings of the 3PC share kernels (cpp/mpc/): wiring only. Dtypes,
// shapes and contiguity are checked here and raise KernelArgumentError (a
// ValueError); the kernels run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "he/conv.hpp"  // check_conv_shape
#include "mpc/kernels.hpp"

namespace py = pybind11;

namespace {

using U64Array = cfbind::U64CArray;
using cfbind::shape_of;
using cfbind::shape_str;
using cfbind::without_gil;
using cfbind::words;

cf::mpc::GemmVariant gemm_variant(const std::string& name) {
  if (name == "default") return cf::mpc::GemmVariant::Default;
  if (name == "avx512_split") return cf::mpc::GemmVariant::Avx512Split;
  throw cf::KernelArgumentError("ring_gemm: variant must be 'default' or 'avx512_split', got '" +
                                name + "'");
}

U64Array ring_gemm(const py::array& a_in, const py::array& b_in, const std::string& isa,
                   int threads, const std::string& variant) {
  const U64Array a = words(a_in, "ring_gemm", "a");
  const U64Array b = words(b_in, "ring_gemm", "b");
  if (a.ndim() != 2 || b.ndim() != 2 || a.shape(1) != b.shape(0)) {
    throw cf::KernelArgumentError("ring_gemm: need (m, k) @ (k, n), got " + shape_str(a) + " @ " +
                                  shape_str(b));
  }
  const cf::Isa which = cf::isa_from_name(isa);
  const cf::mpc::GemmVariant how = gemm_variant(variant);
  const int64_t m = a.shape(0), k = a.shape(1), n = b.shape(1);
  U64Array c({m, n});
  without_gil([&] {
    cf::mpc::ring_gemm_variant(how, which, a.data(), b.data(), c.mutable_data(), m, k, n, threads);
  });
  return c;
}

U64Array ring_conv2d(const py::array& x_in, const py::array& kern_in, int64_t out_h, int64_t out_w,
                     int64_t stride_h, int64_t stride_w, int64_t pad_top, int64_t pad_left,
                     const std::string& isa, int threads) {
  const U64Array x = words(x_in, "ring_conv2d", "x");
  const U64Array kern = words(kern_in, "ring_conv2d", "kern");
  if (x.ndim() != 4 || kern.ndim() != 4 || kern.shape(2) != x.shape(3)) {
    throw cf::KernelArgumentError(
        "ring_conv2d: need images (n, h, w, c) and kernels (kh, kw, c, f), got " + shape_str(x) +
        " and " + shape_str(kern));
  }
  const cf::ConvShape s{x.shape(0),    x.shape(1),    x.shape(2), x.shape(3), kern.shape(0),
                        kern.shape(1), kern.shape(3), stride_h,   stride_w,   pad_top,
                        pad_left,      out_h,         out_w};
  cf::check_conv_shape(s, "ring_conv2d");  // before out_h x out_w is allocated
  const cf::Isa which = cf::isa_from_name(isa);
  U64Array out({x.shape(0), static_cast<py::ssize_t>(out_h), static_cast<py::ssize_t>(out_w),
                kern.shape(3)});
  without_gil(
      [&] { cf::mpc::ring_conv(which, s, x.data(), kern.data(), out.mutable_data(), threads); });
  return out;
}

using ElementKernel = void (*)(cf::Isa, const uint64_t*, const uint64_t*, const uint64_t*,
                               const uint64_t*, const uint64_t*, uint64_t*, int64_t, int);

U64Array rss_local(ElementKernel kernel, const char* name, const py::array& x0_in,
                   const py::array& x1_in, const py::array& y0_in, const py::array& y1_in,
                   const py::array& mask_in, const std::string& isa, int threads) {
  const U64Array x0 = words(x0_in, name, "x0"), x1 = words(x1_in, name, "x1"),
                 y0 = words(y0_in, name, "y0"), y1 = words(y1_in, name, "y1"),
                 mask = words(mask_in, name, "mask");
  const auto shape = shape_of(x0);
  for (const U64Array* v : {&x1, &y0, &y1, &mask}) {
    if (shape_of(*v) != shape) {
      throw cf::KernelArgumentError(std::string(name) + ": operands must have one shape, got " +
                                    shape_str(x0) + " and " + shape_str(*v));
    }
  }
  const cf::Isa which = cf::isa_from_name(isa);
  std::vector<py::ssize_t> strides(shape.size());  // C order; explicit so 0-d stays 0-d
  py::ssize_t step = static_cast<py::ssize_t>(sizeof(uint64_t));
  for (size_t d = shape.size(); d-- > 0;) {
    strides[d] = step;
    step *= std::max<py::ssize_t>(shape[d], 1);
  }
  U64Array z(shape, strides);
  without_gil([&] {
    kernel(which, x0.data(), x1.data(), y0.data(), y1.data(), mask.data(), z.mutable_data(),
           static_cast<int64_t>(x0.size()), threads);
  });
  return z;
}

// A 2-D uint64 operand whose rows are contiguous (any row stride): rows x words.
py::array rows_of(const py::array& a, const char* name) {
  if (!a.dtype().is(py::dtype::of<uint64_t>())) {
    throw cf::KernelArgumentError(std::string("rss_and_rows: ") + name + " must be uint64, got " +
                                  std::string(py::str(a.dtype())));
  }
  // (an empty array may carry any strides: nothing is read or written)
  if (a.ndim() != 2 || (a.size() > 0 && ((a.shape(1) > 1 && a.strides(1) != 8) ||
                                         a.strides(0) % static_cast<py::ssize_t>(8) != 0))) {
    throw cf::KernelArgumentError(std::string("rss_and_rows: ") + name +
                                  " must be 2-D with contiguous rows, got " + shape_str(a));
  }
  return a;
}

void rss_and_rows(const py::array& x0_in, const py::array& x1_in, const py::array& y0_in,
                  const py::array& y1_in, const py::array& mask_in, py::array& out_in,
                  const std::string& isa, int threads) {
  const py::array x0 = rows_of(x0_in, "x0"), x1 = rows_of(x1_in, "x1"), y0 = rows_of(y0_in, "y0"),
                  y1 = rows_of(y1_in, "y1"), mask = rows_of(mask_in, "mask"),
                  out = rows_of(out_in, "out");
  for (const py::array* v : {&x1, &y0, &y1, &mask, &out}) {
    if (shape_of(*v) != shape_of(x0)) {
      throw cf::KernelArgumentError("rss_and_rows: operands must have one shape, got " +
                                    shape_str(x0) + " and " + shape_str(*v));
    }
  }
  if (!out.writeable()) throw cf::KernelArgumentError("rss_and_rows: out must be writeable");
  const cf::Isa which = cf::isa_from_name(isa);
  const py::ssize_t rows = x0.shape(0), cols = x0.shape(1);
  auto row = [](const py::array& a, py::ssize_t r) {
    return reinterpret_cast<const uint64_t*>(static_cast<const char*>(a.data()) + r * a.strides(0));
  };
  uint64_t* dst = static_cast<uint64_t*>(out_in.mutable_data());
  const py::ssize_t dst_stride = out.strides(0) / static_cast<py::ssize_t>(sizeof(uint64_t));
  py::gil_scoped_release release;
  for (py::ssize_t r = 0; r < rows; ++r) {
    cf::mpc::rss_and_local(which, row(x0, r), row(x1, r), row(y0, r), row(y1, r), row(mask, r),
                           dst + r * dst_stride, static_cast<int64_t>(cols), threads);
  }
}

U64Array bitslice(const py::array& x_in, int bits, const std::string& isa, int threads) {
  const U64Array x = words(x_in, "bitslice", "x");
  if (bits < 1 || bits > 64) {
    throw cf::KernelArgumentError("bitslice: bits must be in 1..64, got " + std::to_string(bits));
  }
  const cf::Isa which = cf::isa_from_name(isa);
  const int64_t n = static_cast<int64_t>(x.size());
  U64Array planes({static_cast<int64_t>(bits), cf::mpc::plane_words(n)});
  without_gil([&] { cf::mpc::bitslice(which, x.data(), n, bits, planes.mutable_data(), threads); });
  return planes;
}

U64Array unbitslice(const py::array& planes_in, int64_t n, const std::string& isa, int threads) {
  const U64Array planes = words(planes_in, "unbitslice", "planes");
  if (planes.ndim() != 2 || planes.shape(0) < 1 || planes.shape(0) > 64) {
    throw cf::KernelArgumentError("unbitslice: planes must have shape (bits <= 64, words), got " +
                                  shape_str(planes));
  }
  const int64_t words_per_plane = planes.shape(1);
  if (n < 0 || n / 64 > words_per_plane || (n % 64 != 0 && n / 64 >= words_per_plane)) {
    throw cf::KernelArgumentError("unbitslice: n must be in 0.." +
                                  std::to_string(64 * words_per_plane) + ", got " +
                                  std::to_string(n));
  }
  const cf::Isa which = cf::isa_from_name(isa);
  U64Array x(n);
  without_gil([&] {
    cf::mpc::unbitslice(which, planes.data(), static_cast<int>(planes.shape(0)), words_per_plane, n,
                        x.mutable_data(), threads);
  });
  return x;
}

}  // namespace

void register_mpc(py::module_& m) {
  m.def("ring_gemm", &ring_gemm, py::arg("a"), py::arg("b"), py::kw_only(), py::arg("isa") = "auto",
        py::arg("threads") = 0, py::arg("variant") = "default",
        "a @ b mod 2^64 for C-contiguous uint64 matrices (m, k) @ (k, n) (cpp/mpc/).\n"
        "variant='avx512_split' selects the AVX-512 kernel without vpmullq (benchmarks).");
  m.def("ring_conv2d", &ring_conv2d, py::arg("x"), py::arg("kern"), py::kw_only(), py::arg("out_h"),
        py::arg("out_w"), py::arg("stride_h") = 1, py::arg("stride_w") = 1, py::arg("pad_top") = 0,
        py::arg("pad_left") = 0, py::arg("isa") = "auto", py::arg("threads") = 0,
        "conv(x, kern) mod 2^64 for C-contiguous uint64 NHWC images (n, h, w, c) and kernels\n"
        "(kh, kw, c, f), any word values (cpp/mpc/ring_conv_driver.hpp); taps outside the\n"
        "image read zero; result (n, out_h, out_w, f).");
  m.def(
      "rss_mul_local",
      [](const py::array& x0, const py::array& x1, const py::array& y0, const py::array& y1,
         const py::array& mask, const std::string& isa, int threads) {
        return rss_local(&cf::mpc::rss_mul_local, "rss_mul_local", x0, x1, y0, y1, mask, isa,
                         threads);
      },
      py::arg("x0"), py::arg("x1"), py::arg("y0"), py::arg("y1"), py::arg("mask"), py::kw_only(),
      py::arg("isa") = "auto", py::arg("threads") = 0,
      "x0*y0 + x0*y1 + x1*y0 + mask mod 2^64, element-wise (uint64, one shape, C-contiguous).");
  m.def(
      "rss_and_local",
      [](const py::array& x0, const py::array& x1, const py::array& y0, const py::array& y1,
         const py::array& mask, const std::string& isa, int threads) {
        return rss_local(&cf::mpc::rss_and_local, "rss_and_local", x0, x1, y0, y1, mask, isa,
                         threads);
      },
      py::arg("x0"), py::arg("x1"), py::arg("y0"), py::arg("y1"), py::arg("mask"), py::kw_only(),
      py::arg("isa") = "auto", py::arg("threads") = 0,
      "(x0&y0) ^ (x0&y1) ^ (x1&y0) ^ mask, element-wise (uint64, one shape, C-contiguous).");
  m.def("rss_and_rows", &rss_and_rows, py::arg("x0"), py::arg("x1"), py::arg("y0"), py::arg("y1"),
        py::arg("mask"), py::arg("out"), py::kw_only(), py::arg("isa") = "auto",
        py::arg("threads") = 0,
        "rss_and_local row by row into out: 2-D uint64 operands of one shape whose rows are\n"
        "contiguous (any row stride, e.g. every other bit plane); out is written in place.");
  m.def("bitslice", &bitslice, py::arg("x"), py::kw_only(), py::arg("bits") = 64,
        py::arg("isa") = "auto", py::arg("threads") = 0,
        "Bit planes (bits, ceil(n/64)) of the n = x.size uint64 elements: planes[b, w] bit j\n"
        "is bit b of x.flat[64 w + j] (zero past n).");
  m.def("unbitslice", &unbitslice, py::arg("planes"), py::arg("n"), py::kw_only(),
        py::arg("isa") = "auto", py::arg("threads") = 0,
        "Inverse of bitslice: n uint64 elements from (bits <= 64, words) planes, n <= 64 words.");
}
