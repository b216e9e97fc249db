// pybind11 bindings of the 3PC share kernels (cpp/mpc/): wiring only. Dtypes,
// shapes and contiguity are checked here and raise KernelArgumentError (a
// ValueError); the kernels run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
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
  m.def("bitslice", &bitslice, py::arg("x"), py::kw_only(), py::arg("bits") = 64,
        py::arg("isa") = "auto", py::arg("threads") = 0,
        "Bit planes (bits, ceil(n/64)) of the n = x.size uint64 elements: planes[b, w] bit j\n"
        "is bit b of x.flat[64 w + j] (zero past n).");
  m.def("unbitslice", &unbitslice, py::arg("planes"), py::arg("n"), py::kw_only(),
        py::arg("isa") = "auto", py::arg("threads") = 0,
        "Inverse of bitslice: n uint64 elements from (bits <= 64, words) planes, n <= 64 words.");
}
