#!/usr/bin/env bash
# Build the cipherfuse wheel for x86-64 on this host and repair it to manylinux:
#
#   tools/build-x86_64-wheel.sh [OUT_DIR]           (default OUT_DIR: dist/x86_64)
#
# writes OUT_DIR/cipherfuse-<version>-cp3X-cp3X-manylinux_2_<N>_x86_64.whl and, next to
# it, the `auditwheel show` text of that wheel (.auditwheel.txt). The AVX2/AVX-512
# kernels are all in the one extension; the dispatcher picks one at run time.
# Environment: CIPHERFUSE_TOOLS_VENV (default build/wheel-tools-venv),
# CIPHERFUSE_WHEEL_WERROR (default ON: warnings are errors, as in CI).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT_DIR="$PWD"
OUT_DIR="${1:-dist/x86_64}"
# shellcheck source=tools/wheel-tools.sh
source tools/wheel-tools.sh
[ "$(uname -m)" = x86_64 ] || { echo "run this on an x86-64 host" >&2; exit 1; }

RAW="$ROOT_DIR/build/x86_64-wheel-raw"
rm -rf "$RAW" build/x86_64-wheel && mkdir -p "$RAW" "$OUT_DIR"
nice "$TOOLS_PY" -m pip wheel -q --no-deps --no-build-isolation -w "$RAW" . \
  -Cbuild-dir=build/x86_64-wheel -Ccmake.define.CIPHERFUSE_WERROR="${CIPHERFUSE_WHEEL_WERROR:-ON}"
repair_wheel "$(ls "$RAW"/cipherfuse-*-linux_x86_64.whl)" "$OUT_DIR" x86_64
