// Shared by the binding files of cipherfuse._core (cpp/bindings/register_*.cpp):
// the operand checks of the calling convention (dtype, number of dimensions,
// contiguity; a violation is a KernelArgumentError naming the argument, which
// Python sees as a ValueError, and operands are never converted), the GIL release
// around a kernel, and the registration function of each area, called by module.cpp.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "he/kernels.hpp"

namespace cfbind {

namespace py = pybind11;

using U64Array = py::array_t<uint64_t, 0>;
using I64Array = py::array_t<int64_t, 0>;
/// An array known to be C-contiguous (the 3PC kernels' operands).
using U64CArray = py::array_t<uint64_t, py::array::c_style>;

/// Runs `kernel()` with the GIL released: kernels never touch Python objects, so other
/// Python threads run meanwhile. The operands stay alive: the caller holds them.
template <typename F>
decltype(auto) without_gil(F&& kernel) {
  py::gil_scoped_release release;
  return std::forward<F>(kernel)();
}

/// A strided 2-D view of `a` (strides must be whole elements of T).
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

/// `a` is 1-D and contiguous (uint64 words).
template <typename A>
void require_1d_contiguous(const A& a, const char* name) {
  if (a.ndim() != 1) throw cf::KernelArgumentError(std::string(name) + " must be 1-D");
  if (a.shape(0) > 1 && a.strides(0) != static_cast<py::ssize_t>(sizeof(uint64_t))) {
    throw cf::KernelArgumentError(std::string(name) + " must be contiguous");
  }
}

/// `a` has `ndim` dimensions and is C-contiguous.
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

/// An untyped operand as a C-contiguous `ndim`-D array of T (`dtype` names T in the
/// message): operands arrive untyped so that a wrong dtype is a KernelArgumentError
/// naming the argument (not pybind11's generic TypeError), and are never converted.
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

/// typed_nd for the 4-D NHWC images, kernels and feature maps.
template <typename T>
py::array_t<T, 0> typed_4d(const py::array& a, const char* name, const char* dtype) {
  return typed_nd<T>(a, name, dtype, 4);
}

/// The optional bias operand: `filters` uint64 words (1-D, C-contiguous), or nullptr
/// when absent; the caller's array keeps the words alive. `dtype_error` and
/// `count_error` are the messages of a wrong dtype and a wrong length.
inline const uint64_t* optional_bias(const std::optional<py::array>& bias, py::ssize_t filters,
                                     const char* dtype_error, const char* count_error) {
  if (!bias) return nullptr;
  if (!bias->dtype().is(py::dtype::of<uint64_t>())) throw cf::KernelArgumentError(dtype_error);
  const auto words = py::reinterpret_borrow<U64Array>(*bias);
  require_c_contiguous(words, "bias", 1);
  if (words.shape(0) != filters) throw cf::KernelArgumentError(count_error);
  return words.data();
}

/// The operand as a C-contiguous uint64 array of any shape, never a converted copy;
/// messages name the kernel and the argument.
inline U64CArray words(const py::array& a, const char* kernel, const char* name) {
  if (!a.dtype().is(py::dtype::of<uint64_t>())) {
    throw cf::KernelArgumentError(std::string(kernel) + ": " + name + " must be uint64, got " +
                                  std::string(py::str(a.dtype())));
  }
  if (!(a.flags() & py::array::c_style)) {
    throw cf::KernelArgumentError(std::string(kernel) + ": " + name + " must be C-contiguous");
  }
  return py::reinterpret_borrow<U64CArray>(a);
}

inline std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

/// The shape as Python prints it: "(3,)", "(2, 5)".
inline std::string shape_str(const py::array& a) {
  std::string out = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    out += (d ? ", " : "") + std::to_string(a.shape(d));
  }
  return out + (a.ndim() == 1 ? ",)" : ")");
}

}  // namespace cfbind

// The areas of cipherfuse._core, one binding file each (module.cpp calls them in turn).
void register_he(pybind11::module_& m);       // register_he.cpp: digits, GEMM, key switch, PRG
void register_seeded(pybind11::module_& m);   // register_seeded.cpp: seeded conv and finish
void register_conv(pybind11::module_& m);     // register_conv.cpp: direct convolution
void register_limb(pybind11::module_& m);     // register_limb.cpp: the fused limb block
void register_storage(pybind11::module_& m);  // register_storage.cpp: byte gathering
void register_mpc(pybind11::module_& m);      // register_mpc.cpp: the 3PC share kernels
