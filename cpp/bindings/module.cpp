// pybind11 module cipherfuse._core: the kernels of cpp/, bound one area per file
// (register_<area>.cpp, shared checks in bindings.hpp). Shapes and dtypes are checked
// in the bindings (they are part of the calling convention); the kernels and their
// semantics live in cpp/he/, cpp/mpc/ and cpp/storage/.
#include <pybind11/pybind11.h>

#include "bindings/bindings.hpp"
#include "he/kernels.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "cipherfuse C++ kernels (integer-vector HE, arithmetic mod 2^64)";
  py::register_exception<cf::KernelArgumentError>(m, "KernelArgumentError", PyExc_ValueError);
  register_he(m);
  register_seeded(m);
  register_conv(m);
  register_limb(m);
  register_storage(m);
  register_mpc(m);
}
