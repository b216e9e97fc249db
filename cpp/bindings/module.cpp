// pybind11 bindings for cipherfuse._core: wiring only. Shapes and dtypes are
// checked here (they are part of the calling convention); the kernels and
// their semantics live in cpp/he/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <optional>
#include <string>

#include "he/conv.hpp"
#include "he/kernels.hpp"
#include "he/limb_kernel.hpp"
#include "he/prg.hpp"
#include "he/seeded.hpp"
#include "storage/buffer.hpp"

namespace py = pybind11;

void register_mpc(py::module_& m);  // register_mpc.cpp: the 3PC share kernels

namespace {

using U64Array = py::array_t<uint64_t, 0>;
using I64Array = py::array_t<int64_t, 0>;

template <typename T, typename A>
cf::View2D<T> view2d(A& a, const char* name) {
  if (a.ndim() != 2) throw cf::KernelArgumentError(std::string(name) + " must be 2-D");
  constexpr auto item = static_cast<py::ssize_t>(sizeof(T));
  if (a.strides(0) % item != 0 || a.strides(1) % item != 0) {
    throw cf::KernelArgumentError(std::string(name) + " has unaligned strides");
  }
  return {const_cast<T*>(reinterpret_cast<const T*>(a.data())), a.shape(0), a.shape(1),
          a.strides(0) / item, a.strides(1) / item};
}

template <typename A>
void require_1d_contiguous(const A& a, const char* name) {
  if (a.ndim() != 1) throw cf::KernelArgumentError(std::string(name) + " must be 1-D");
  if (a.shape(0) > 1 && a.strides(0) != static_cast<py::ssize_t>(sizeof(uint64_t))) {
    throw cf::KernelArgumentError(std::string(name) + " must be contiguous");
  }
}

U64Array decompose(const U64Array& c, int base_bits) {
  require_1d_contiguous(c, "c");
  const int l = cf::digit_count(base_bits);
  U64Array out(c.shape(0) * l);
  {
    py::gil_scoped_release release;
    cf::decompose(c.data(), c.shape(0), base_bits, out.mutable_data());
  }
  return out;
}

U64Array gemm_wide_small(const U64Array& W, const I64Array& S, const std::string& isa,
                         int threads) {
  const auto w = view2d<const uint64_t>(W, "W");
  const auto s = view2d<const int64_t>(S, "S");
  U64Array C({w.rows, s.cols});
  auto c = view2d<uint64_t>(C, "C");
  const cf::Isa which = cf::isa_from_name(isa);
  py::gil_scoped_release release;
  cf::gemm_wide_small(which, w, s, c, threads);
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
  py::gil_scoped_release release;
  cf::gemm_wide_small(which, wt, st, ct, threads);
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
  py::gil_scoped_release release;
  cf::keyswitch(which, M.data(), M.shape(0), c.shape(0), base_bits, skip_low_digits, c.data(),
                out.mutable_data(), threads);
  return out;
}

U64Array tensor_round(const U64Array& a, const U64Array& b, int shift, int threads) {
  require_1d_contiguous(a, "a");
  require_1d_contiguous(b, "b");
  U64Array out(a.shape(0) * b.shape(0));
  if (threads < 1) threads = cf::default_threads();
  py::gil_scoped_release release;
  cf::tensor_round(a.data(), a.shape(0), b.data(), b.shape(0), shift, out.mutable_data(), threads);
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
  py::gil_scoped_release release;
  cf::chacha20_stream(reinterpret_cast<const uint8_t*>(k.data()),
                      reinterpret_cast<const uint8_t*>(n.data()), counter, nblocks, dst, threads);
  return out;
}

template <typename A>
void require_c_contiguous(const A& a, const char* name, py::ssize_t ndim) {
  if (a.ndim() != ndim) {
    throw cf::KernelArgumentError(std::string(name) + " must be " + std::to_string(ndim) + "-D");
  }
  if (a.size() == 0) return;  // numpy may give empty arrays zero strides
  py::ssize_t stride = static_cast<py::ssize_t>(a.itemsize());
  for (py::ssize_t i = ndim - 1; i >= 0; --i) {
    if (a.shape(i) > 1 && a.strides(i) != stride) {
      throw cf::KernelArgumentError(std::string(name) + " must be C-contiguous");
    }
    stride *= a.shape(i);
  }
}

U64Array seeded_conv(const I64Array& x, const U64Array& kern, const std::optional<U64Array>& bias,
                     int64_t stride_h, int64_t stride_w, int64_t pad_top, int64_t pad_left,
                     int64_t out_h, int64_t out_w, const std::string& isa, int threads) {
  require_c_contiguous(x, "x", 4);
  require_c_contiguous(kern, "kern", 4);
  if (kern.shape(2) != x.shape(3)) {
    throw cf::KernelArgumentError("seeded_conv: kern has " + std::to_string(kern.shape(2)) +
                                  " input channels, the images have " +
                                  std::to_string(x.shape(3)));
  }
  const uint64_t* bias_ptr = nullptr;
  if (bias) {
    require_c_contiguous(*bias, "bias", 1);
    if (bias->shape(0) != kern.shape(3)) {
      throw cf::KernelArgumentError("seeded_conv: bias must have one word per filter");
    }
    bias_ptr = bias->data();
  }
  const cf::ConvShape s{x.shape(0),    x.shape(1), x.shape(2), x.shape(3), kern.shape(0),
                        kern.shape(1), kern.shape(3), stride_h, stride_w, pad_top,
                        pad_left,      out_h,      out_w};
  if (out_h < 1 || out_w < 1) throw cf::KernelArgumentError("seeded_conv: empty output");
  U64Array out({x.shape(0), static_cast<py::ssize_t>(out_h), static_cast<py::ssize_t>(out_w),
                kern.shape(3)});
  const cf::Isa which = cf::isa_from_name(isa);
  uint64_t* dst = out.mutable_data();
  py::gil_scoped_release release;
  cf::seeded_conv(which, s, x.data(), kern.data(), bias_ptr, dst, threads);
  return out;
}

// ------------------------------------------------------------ decrypt finish
// Operands arrive as untyped arrays so that a wrong dtype is a KernelArgumentError
// naming the argument (not pybind11's generic TypeError), and are never converted.
template <typename T>
py::array_t<T, 0> typed_4d(const py::array& a, const char* name, const char* dtype) {
  if (!a.dtype().is(py::dtype::of<T>())) {
    throw cf::KernelArgumentError(std::string(name) + " must be " + dtype + ", got " +
                                  std::string(py::str(a.dtype())));
  }
  auto typed = py::reinterpret_borrow<py::array_t<T, 0>>(a);
  require_c_contiguous(typed, name, 4);
  return typed;
}

bool parse_activation(const std::string& activation) {
  if (activation == "relu") return true;
  if (activation == "none") return false;
  throw cf::KernelArgumentError("activation must be 'relu' or 'none', got '" + activation + "'");
}

cf::FinishShape finish_shape(const U64Array& b, int tau, const std::string& activation,
                             int64_t pool_h, int64_t pool_w, int64_t pool_sh, int64_t pool_sw) {
  cf::FinishShape s{b.shape(0), b.shape(1), b.shape(2), b.shape(3), tau,
                    parse_activation(activation), pool_h, pool_w, pool_sh, pool_sw, 0, 0};
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
  py::gil_scoped_release release;
  cf::decrypt_finish(s, a.data(), b.data(), dst, threads);
  return out;
}

I64Array seeded_conv_finish(const py::array& x_in, const py::array& kern_in,
                            const std::optional<py::array>& bias_in, const py::array& b_in,
                            int tau, int64_t stride_h, int64_t stride_w, int64_t pad_top,
                            int64_t pad_left, const std::string& activation, int64_t pool_h,
                            int64_t pool_w, int64_t pool_sh, int64_t pool_sw,
                            const std::string& isa, int threads) {
  const I64Array x = typed_4d<int64_t>(x_in, "x", "int64");
  const U64Array kern = typed_4d<uint64_t>(kern_in, "kern", "uint64");
  const U64Array b = typed_4d<uint64_t>(b_in, "b", "uint64");
  if (kern.shape(2) != x.shape(3) || kern.shape(3) != b.shape(3) || x.shape(0) != b.shape(0)) {
    throw cf::KernelArgumentError(
        "seeded_conv_finish: kern must be (kh, kw, C, F) with C the channels of x and F the "
        "last axis of b, and x and b must hold the same number of images");
  }
  std::optional<U64Array> bias;
  const uint64_t* bias_ptr = nullptr;
  if (bias_in) {
    if (!bias_in->dtype().is(py::dtype::of<uint64_t>())) {
      throw cf::KernelArgumentError("bias must be uint64");
    }
    bias = py::reinterpret_borrow<U64Array>(*bias_in);
    require_c_contiguous(*bias, "bias", 1);
    if (bias->shape(0) != kern.shape(3)) {
      throw cf::KernelArgumentError("seeded_conv_finish: bias must have one word per filter");
    }
    bias_ptr = bias->data();
  }
  const cf::FinishShape fin = finish_shape(b, tau, activation, pool_h, pool_w, pool_sh, pool_sw);
  const cf::ConvShape conv{x.shape(0),    x.shape(1), x.shape(2), x.shape(3), kern.shape(0),
                           kern.shape(1), kern.shape(3), stride_h, stride_w, pad_top,
                           pad_left,      b.shape(1), b.shape(2)};
  I64Array out({fin.n, fin.out_h, fin.out_w, fin.f});
  const cf::Isa which = cf::isa_from_name(isa);
  int64_t* dst = out.mutable_data();
  py::gil_scoped_release release;
  cf::seeded_conv_finish(which, conv, x.data(), kern.data(), bias_ptr, fin, b.data(), dst,
                         threads);
  return out;
}


// ------------------------------------------------------------ limb block
template <typename T>
py::array_t<T, 0> typed_nd(const py::array& a, const char* name, const char* dtype,
                           py::ssize_t ndim) {
  if (!a.dtype().is(py::dtype::of<T>())) {
    throw cf::KernelArgumentError(std::string(name) + " must be " + dtype + ", got " +
                                  std::string(py::str(a.dtype())));
  }
  auto typed = py::reinterpret_borrow<py::array_t<T, 0>>(a);
  require_c_contiguous(typed, name, ndim);
  return typed;
}

py::tuple limb_block(const py::array& x_in, const py::array& kern_in, const py::array& offsets_in,
                     const py::array& bias_in, int64_t stride_h, int64_t stride_w,
                     int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right,
                     int64_t pool_h, int64_t pool_w, int64_t pool_sh, int64_t pool_sw,
                     const std::string& isa, int threads, const std::optional<py::array>& out_in,
                     int64_t scale) {
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
  cf::LimbShape s{x.shape(0), x.shape(1), x.shape(2), x.shape(3), kern.shape(1), kern.shape(2),
                  kern.shape(4), stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right,
                  pool_h, pool_w, pool_sh, pool_sw, 0, 0, 0, 0};
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
      throw cf::KernelArgumentError(
          "limb_block: out must be a writeable (" + std::to_string(s.n) + ", " +
          std::to_string(s.pooled_h) + ", " + std::to_string(s.pooled_w) + ", " +
          std::to_string(s.f) + ") " + (quotients ? "float32" : "int64") + " array");
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
  cf::LimbStats st;
  {
    py::gil_scoped_release release;
    st = cf::limb_block(which, s, x.data(), kern.data(), offsets.data(), bias.data(), sink,
                        threads);
  }
  py::object features = st.computed ? py::object(out) : py::object(py::none());
  return py::make_tuple(features, st.l1, st.tail_min, st.tail_max, st.pooled_tail_max);
}

// ------------------------------------------------------------ direct convolution
cf::ConvShape conv_shape(const I64Array& x, int64_t kh, int64_t kw, int64_t f, int64_t stride_h,
                         int64_t stride_w, int64_t pad_top, int64_t pad_left, int64_t out_h,
                         int64_t out_w) {
  return {x.shape(0), x.shape(1), x.shape(2), x.shape(3), kh,      kw,    f,
          stride_h,   stride_w,   pad_top,    pad_left,   out_h,   out_w};
}

U64Array conv2d_direct(const py::array& x_in, const py::array& kern_in,
                       const std::optional<py::array>& bias_in, int64_t stride_h,
                       int64_t stride_w, int64_t pad_top, int64_t pad_left, int64_t out_h,
                       int64_t out_w, const std::string& isa, int threads) {
  const I64Array x = typed_4d<int64_t>(x_in, "x", "int64");
  const U64Array kern = typed_4d<uint64_t>(kern_in, "kern", "uint64");
  if (kern.shape(2) != x.shape(3)) {
    throw cf::KernelArgumentError("conv2d_direct: kern has " + std::to_string(kern.shape(2)) +
                                  " input channels, the images have " +
                                  std::to_string(x.shape(3)));
  }
  std::optional<U64Array> bias;
  const uint64_t* bias_ptr = nullptr;
  if (bias_in) {
    if (!bias_in->dtype().is(py::dtype::of<uint64_t>())) {
      throw cf::KernelArgumentError("conv2d_direct: bias must be uint64");
    }
    bias = py::reinterpret_borrow<U64Array>(*bias_in);
    require_c_contiguous(*bias, "bias", 1);
    if (bias->shape(0) != kern.shape(3)) {
      throw cf::KernelArgumentError("conv2d_direct: bias must have one word per output column");
    }
    bias_ptr = bias->data();
  }
  const cf::ConvShape s = conv_shape(x, kern.shape(0), kern.shape(1), kern.shape(3), stride_h,
                                     stride_w, pad_top, pad_left, out_h, out_w);
  cf::check_conv_shape(s, "conv2d_direct");  // before out_h x out_w is allocated
  const cf::Isa which = cf::isa_from_name(isa);
  U64Array out({x.shape(0), static_cast<py::ssize_t>(out_h), static_cast<py::ssize_t>(out_w),
                kern.shape(3)});
  uint64_t* dst = out.mutable_data();
  py::gil_scoped_release release;
  cf::conv_direct(which, s, x.data(), kern.data(), bias_ptr, dst, threads);
  return out;
}

uint64_t conv2d_patch_l1_max(const py::array& x_in, int64_t kh, int64_t kw, int64_t stride_h,
                             int64_t stride_w, int64_t pad_top, int64_t pad_left, int64_t out_h,
                             int64_t out_w, int threads) {
  const I64Array x = typed_4d<int64_t>(x_in, "x", "int64");
  const cf::ConvShape s =
      conv_shape(x, kh, kw, 1, stride_h, stride_w, pad_top, pad_left, out_h, out_w);
  py::gil_scoped_release release;
  return cf::conv_patch_l1_max(s, x.data(), threads);
}

// Concatenates an iterable of bytes-like parts into one bytes object of exactly
// `size` bytes, allocated once (huge-page advised) and filled as the parts arrive.
py::bytes gather_bytes(const py::iterable& parts, py::ssize_t size) {
  if (size < 0) throw cf::KernelArgumentError("gather_bytes: size must be >= 0");
  py::bytes out = py::reinterpret_steal<py::bytes>(PyBytes_FromStringAndSize(nullptr, size));
  if (!out) throw py::error_already_set();
  char* dst = PyBytes_AS_STRING(out.ptr());
  cf::advise_huge_pages(dst, static_cast<std::size_t>(size));
  py::ssize_t pos = 0;
  for (py::handle item : parts) {
    const py::object part = py::reinterpret_borrow<py::object>(item);
    Py_buffer view;
    if (PyObject_GetBuffer(part.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    const py::ssize_t n = view.len;
    if (n > size - pos) {
      PyBuffer_Release(&view);
      throw cf::KernelArgumentError("gather_bytes: the parts hold more than size bytes");
    }
    if (n >= (py::ssize_t{1} << 16)) {
      py::gil_scoped_release release;  // `out` is not shared yet; `part` is held
      std::memcpy(dst + pos, view.buf, static_cast<std::size_t>(n));
    } else if (n > 0) {
      std::memcpy(dst + pos, view.buf, static_cast<std::size_t>(n));
    }
    PyBuffer_Release(&view);
    pos += n;
  }
  if (pos != size) throw cf::KernelArgumentError("gather_bytes: the parts hold fewer than size bytes");
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "cipherfuse C++ kernels (integer-vector HE, arithmetic mod 2^64)";
  py::register_exception<cf::KernelArgumentError>(m, "KernelArgumentError", PyExc_ValueError);

  m.def("digit_count", &cf::digit_count, py::arg("base_bits"),
        "Number of base-2^base_bits digits of a 64-bit word.");
  m.def("decompose", &decompose, py::arg("c").noconvert(), py::arg("base_bits"),
        "Digit decomposition c* (most significant digit first), as uint64.");
  m.def("gemm_wide_small", &gemm_wide_small, py::arg("w").noconvert(), py::arg("s").noconvert(),
        py::arg("isa") = "auto", py::arg("threads") = 0,
        "W @ S mod 2^64 for uint64 W and small int64 S (|S| < 2^40 for the SIMD paths).");
  m.def("gemm_small_wide", &gemm_small_wide, py::arg("s").noconvert(), py::arg("w").noconvert(),
        py::arg("isa") = "auto", py::arg("threads") = 0,
        "S @ W mod 2^64 for small int64 S and uint64 W.");
  m.def("keyswitch", &keyswitch, py::arg("m").noconvert(), py::arg("c").noconvert(),
        py::arg("base_bits"), py::arg("isa") = "auto", py::arg("threads") = 0,
        py::arg("skip_low_digits") = 0,
        "M @ decompose(c) mod 2^64 (bandwidth-bound key switch); the skip_low_digits least\n"
        "significant digits of every word must be zero and their columns are not read.");
  m.def("tensor_round", &tensor_round, py::arg("a").noconvert(), py::arg("b").noconvert(),
        py::arg("shift"), py::arg("threads") = 0,
        "round(vec(a b^T) / 2^shift) mod 2^64 over signed 128-bit products (paper Eq. 44).");
  m.def(
      "isa_available",
      [](const std::string& name) { return cf::isa_available(cf::isa_from_name(name)); },
      py::arg("name"));
  m.def("chacha20", &chacha20, py::arg("key"), py::arg("nonce"), py::arg("counter"),
        py::arg("nblocks"), py::arg("threads") = 0,
        "ChaCha20 (RFC 8439) keystream: nblocks 64-byte blocks from block `counter`.");
  m.def("gather_bytes", &gather_bytes, py::arg("parts"), py::arg("size"),
        "The bytes-like parts concatenated into one bytes object of exactly `size` bytes,\n"
        "allocated once (huge-page advised); ValueError if they hold more or fewer bytes.");
  m.def(
      "stream_sum",
      [](const U64Array& a, int threads) {
        require_1d_contiguous(a, "a");
        py::gil_scoped_release release;
        return cf::stream_sum(a.data(), a.shape(0), threads);
      },
      py::arg("a").noconvert(), py::arg("threads") = 0,
      "Sum of a mod 2^64, reading it once: the memory-read bandwidth probe.");
  m.def("seeded_conv", &seeded_conv, py::arg("x").noconvert(), py::arg("kern").noconvert(),
        py::arg("bias").noconvert() = py::none(), py::arg("stride_h") = 1,
        py::arg("stride_w") = 1, py::arg("pad_top") = 0, py::arg("pad_left") = 0,
        py::arg("out_h") = 0, py::arg("out_w") = 0, py::arg("isa") = "auto",
        py::arg("threads") = 0,
        "Seeded convolution b-part: bias + conv(x, kern) mod 2^64 for int64 NHWC images\n"
        "(|x| < 2^31) and uint64 kernels (kh, kw, C, F); taps outside the image are zero.");
  m.def("decrypt_finish", &decrypt_finish, py::arg("a"), py::arg("b"), py::arg("tau"),
        py::arg("activation") = "none", py::arg("pool_h") = 1, py::arg("pool_w") = 1,
        py::arg("pool_sh") = 1, py::arg("pool_sw") = 1, py::arg("threads") = 0,
        "Seeded decryption finish in one pass over uint64 (n, H, W, F) a-terms and b-parts:\n"
        "y = int64(a + b + 2^(63-tau)) >> (64-tau), ReLU if activation == 'relu', then the\n"
        "sum over VALID pool windows (pool_h x pool_w, stride pool_sh x pool_sw; 1x1 = none),\n"
        "wrapping like numpy's int64 sum. Returns int64 (n, H'', W'', F).");
  m.def("seeded_conv_finish", &seeded_conv_finish, py::arg("x"), py::arg("kern"),
        py::arg("bias"), py::arg("b"), py::arg("tau"), py::arg("stride_h") = 1,
        py::arg("stride_w") = 1, py::arg("pad_top") = 0, py::arg("pad_left") = 0,
        py::arg("activation") = "none", py::arg("pool_h") = 1, py::arg("pool_w") = 1,
        py::arg("pool_sh") = 1, py::arg("pool_sw") = 1, py::arg("isa") = "auto",
        py::arg("threads") = 0,
        "decrypt_finish(seeded_conv(x, kern, bias, ...), b, ...) with the a-term computed one\n"
        "block of images at a time (never materialised); the conv output size is b's H x W.");
  m.def("limb_block", &limb_block, py::arg("x"), py::arg("kern"), py::arg("offsets"),
        py::arg("bias"), py::arg("stride_h") = 1, py::arg("stride_w") = 1,
        py::arg("pad_top") = 0, py::arg("pad_bottom") = 0, py::arg("pad_left") = 0,
        py::arg("pad_right") = 0, py::arg("pool_h") = 1, py::arg("pool_w") = 1,
        py::arg("pool_sh") = 1, py::arg("pool_sw") = 1, py::arg("isa") = "auto",
        py::arg("threads") = 0, py::arg("out") = py::none(), py::arg("scale") = 0,
        "The fused limb first block (cpp/he/limb_kernel.hpp) on int64 NHWC images x, limb\n"
        "kernels kern (3, kh, kw, C, F), offsets (3,) and bias (3, F), all int64 below 2^24.\n"
        "Returns (features, l1, tail_min, tail_max, pooled_tail_max): features int64\n"
        "(n, H'', W'', F), or with scale in [1, 2^24) float32 features / scale rounded once\n"
        "(written into `out` when given, C-contiguous of that shape and dtype), or None when\n"
        "an exactness bound fails (out's contents then unspecified).");
  m.def("conv2d_direct", &conv2d_direct, py::arg("x"), py::arg("kern"),
        py::arg("bias") = py::none(), py::arg("stride_h") = 1, py::arg("stride_w") = 1,
        py::arg("pad_top") = 0, py::arg("pad_left") = 0, py::arg("out_h") = 0,
        py::arg("out_w") = 0, py::arg("isa") = "auto", py::arg("threads") = 0,
        "Direct 2-D convolution bias + conv(x, kern) mod 2^64 of int64 NHWC images x (n, h, w,\n"
        "C) and uint64 kernel words kern (kh, kw, C, F); taps outside the image are zero.\n"
        "Returns uint64 (n, out_h, out_w, F), written once in that layout (no patch matrix).");
  m.def("conv2d_patch_l1_max", &conv2d_patch_l1_max, py::arg("x"), py::arg("kh"), py::arg("kw"),
        py::arg("stride_h") = 1, py::arg("stride_w") = 1, py::arg("pad_top") = 0,
        py::arg("pad_left") = 0, py::arg("out_h") = 0, py::arg("out_w") = 0,
        py::arg("threads") = 0,
        "The largest l1 norm of a conv patch (taps inside the image, all channels) of int64\n"
        "NHWC images with |x| < 2^40: the input factor of the convolution's noise bound.");
  m.def("best_isa", []() { return std::string(cf::isa_name(cf::best_isa())); });
  m.def("default_threads", &cf::default_threads);
  register_mpc(m);
}
