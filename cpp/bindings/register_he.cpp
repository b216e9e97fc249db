// pybind11 bindings of the HE scheme kernels (cpp/he/kernels.hpp, prg.hpp): digit
// decomposition, the wide x small GEMM, key switching, the tensor product's rounding,
// the ChaCha20 keystream, the bandwidth probe and the ISA queries. Wiring only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/bindings.hpp"
#include "he/kernels.hpp"
#include "he/prg.hpp"

namespace py = pybind11;
using cfbind::I64Array;
using cfbind::require_1d_contiguous;
using cfbind::U64Array;
using cfbind::view2d;
using cfbind::without_gil;

namespace {

U64Array decompose(const U64Array& c, int base_bits) {
  require_1d_contiguous(c, "c");
  const int l = cf::digit_count(base_bits);
  U64Array out(c.shape(0) * l);
  without_gil([&] { cf::decompose(c.data(), c.shape(0), base_bits, out.mutable_data()); });
  return out;
}

U64Array gemm_wide_small(const U64Array& W, const I64Array& S, const std::string& isa,
                         int threads) {
  const auto w = view2d<const uint64_t>(W, "W");
  const auto s = view2d<const int64_t>(S, "S");
  U64Array C({w.rows, s.cols});
  auto c = view2d<uint64_t>(C, "C");
  const cf::Isa which = cf::isa_from_name(isa);
  without_gil([&] { cf::gemm_wide_small(which, w, s, c, threads); });
  return C;
}

U64Array gemm_small_wide(const I64Array& S, const U64Array& W, const std::string& isa,
                         int threads) {
  // C = S W  <=>  C^T = W^T S^T: transposes are stride swaps.
  auto s = view2d<const int64_t>(S, "S");
  auto w = view2d<const uint64_t>(W, "W");
  U64Array C({s.rows, w.cols});
  auto c = view2d<uint64_t>(C, "C");
  const cf::View2D<const uint64_t> wt{w.data, w.cols, w.rows, w.col_stride, w.row_stride};
  const cf::View2D<const int64_t> st{s.data, s.cols, s.rows, s.col_stride, s.row_stride};
  const cf::View2D<uint64_t> ct{c.data, c.cols, c.rows, c.col_stride, c.row_stride};
  const cf::Isa which = cf::isa_from_name(isa);
  without_gil([&] { cf::gemm_wide_small(which, wt, st, ct, threads); });
  return C;
}

U64Array keyswitch(const U64Array& M, const U64Array& c, int base_bits, const std::string& isa,
                   int threads, int skip_low_digits) {
  require_1d_contiguous(c, "c");
  if (M.ndim() != 2) throw cf::KernelArgumentError("M must be 2-D");
  const int l = cf::digit_count(base_bits);
  if (M.shape(1) != c.shape(0) * l) {
    throw cf::KernelArgumentError(
        "keyswitch: M has " + std::to_string(M.shape(1)) +
        " columns, expected len(c) * digits = " + std::to_string(c.shape(0) * l));
  }
  if (M.shape(0) > 0 && M.shape(1) > 0 &&
      (M.strides(1) != static_cast<py::ssize_t>(sizeof(uint64_t)) ||
       M.strides(0) != M.shape(1) * static_cast<py::ssize_t>(sizeof(uint64_t)))) {
    throw cf::KernelArgumentError("keyswitch: M must be C-contiguous");
  }
  U64Array out(M.shape(0));
  const cf::Isa which = cf::isa_from_name(isa);
  without_gil([&] {
    cf::keyswitch(which, M.data(), M.shape(0), c.shape(0), base_bits, skip_low_digits, c.data(),
                  out.mutable_data(), threads);
  });
  return out;
}

U64Array tensor_round(const U64Array& a, const U64Array& b, int shift, int threads) {
  require_1d_contiguous(a, "a");
  require_1d_contiguous(b, "b");
  U64Array out(a.shape(0) * b.shape(0));
  if (threads < 1) threads = cf::default_threads();
  without_gil([&] {
    cf::tensor_round(a.data(), a.shape(0), b.data(), b.shape(0), shift, out.mutable_data(),
                     threads);
  });
  return out;
}

py::array_t<uint8_t> chacha20(const py::bytes& key, const py::bytes& nonce, uint32_t counter,
                              uint64_t nblocks, int threads) {
  const std::string k = key;
  const std::string n = nonce;
  if (k.size() != 32 || n.size() != 12) {
    throw cf::KernelArgumentError("chacha20: key must be 32 bytes and nonce 12 bytes");
  }
  py::array_t<uint8_t> out(static_cast<py::ssize_t>(nblocks * 64));
  auto* dst = out.mutable_data();
  without_gil([&] {
    cf::chacha20_stream(reinterpret_cast<const uint8_t*>(k.data()),
                        reinterpret_cast<const uint8_t*>(n.data()), counter, nblocks, dst, threads);
  });
  return out;
}

}  // namespace

void register_he(py::module_& m) {
  m.def("digit_count", &cf::digit_count, py::arg("base_bits"),
        "Number of base-2^base_bits digits of a 64-bit word.");
  m.def("decompose", &decompose, py::arg("c").noconvert(), py::arg("base_bits"),
        "Digit decomposition c* (most significant digit first), as uint64.");
  m.def("gemm_wide_small", &gemm_wide_small, py::arg("w").noconvert(), py::arg("s").noconvert(),
        py::kw_only(), py::arg("isa") = "auto", py::arg("threads") = 0,
        "W @ S mod 2^64 for uint64 W and small int64 S (|S| < 2^40 for the SIMD paths).");
  m.def("gemm_small_wide", &gemm_small_wide, py::arg("s").noconvert(), py::arg("w").noconvert(),
        py::kw_only(), py::arg("isa") = "auto", py::arg("threads") = 0,
        "S @ W mod 2^64 for small int64 S and uint64 W.");
  m.def("keyswitch", &keyswitch, py::arg("m").noconvert(), py::arg("c").noconvert(),
        py::arg("base_bits"), py::kw_only(), py::arg("isa") = "auto", py::arg("threads") = 0,
        py::arg("skip_low_digits") = 0,
        "M @ decompose(c) mod 2^64 (bandwidth-bound key switch); the skip_low_digits least\n"
        "significant digits of every word must be zero and their columns are not read.");
  m.def("tensor_round", &tensor_round, py::arg("a").noconvert(), py::arg("b").noconvert(),
        py::arg("shift"), py::kw_only(), py::arg("threads") = 0,
        "round(vec(a b^T) / 2^shift) mod 2^64 over signed 128-bit products (paper Eq. 44).");
  m.def(
      "isa_available",
      [](const std::string& name) { return cf::isa_available(cf::isa_from_name(name)); },
      py::arg("name"));
  m.def("chacha20", &chacha20, py::arg("key"), py::arg("nonce"), py::arg("counter"),
        py::arg("nblocks"), py::kw_only(), py::arg("threads") = 0,
        "ChaCha20 (RFC 8439) keystream: nblocks 64-byte blocks from block `counter`.");
  m.def(
      "stream_sum",
      [](const U64Array& a, int threads) {
        require_1d_contiguous(a, "a");
        return without_gil([&] { return cf::stream_sum(a.data(), a.shape(0), threads); });
      },
      py::arg("a").noconvert(), py::kw_only(), py::arg("threads") = 0,
      "Sum of a mod 2^64, reading it once: the memory-read bandwidth probe.");
  m.def("best_isa", []() { return std::string(cf::isa_name(cf::best_isa())); });
  m.def("default_threads", &cf::default_threads);
}
