// pybind11 bindings of the storage helpers (cpp/storage/buffer.hpp). Wiring only.
#include <pybind11/pybind11.h>

#include <cstring>

#include "bindings/bindings.hpp"
#include "he/kernels.hpp"
#include "storage/buffer.hpp"

namespace py = pybind11;

namespace {

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
  if (pos != size)
    throw cf::KernelArgumentError("gather_bytes: the parts hold fewer than size bytes");
  return out;
}

}  // namespace

void register_storage(py::module_& m) {
  m.def("gather_bytes", &gather_bytes, py::arg("parts"), py::arg("size"),
        "The bytes-like parts concatenated into one bytes object of exactly `size` bytes,\n"
        "allocated once (huge-page advised); ValueError if they hold more or fewer bytes.");
}
