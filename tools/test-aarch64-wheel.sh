#!/usr/bin/env bash
# Install the aarch64 wheel into an arm64 Python under qemu and test it:
#
#   tools/test-aarch64-wheel.sh WHEEL [SUMMARY_JSON]
#
# Runs in the arm64 Debian root of tools/make-arm64-root.sh (CIPHERFUSE_ARM64_ROOT,
# default build/arm64-root) through proot + qemu-aarch64-static. The test dependencies
# are PyPI's aarch64 wheels, fetched on the host by `pip download --platform`; the
# emulated pip installs them offline. Checked, in order (1 and 2 stop the run; a pytest
# failure still lets 4 run and the summary be written, and the exit status is nonzero):
#   1. the run-time dispatcher picks NEON: cipherfuse._core.best_isa() == "neon";
#   2. the `cipherfuse he selftest` command (every HE operation, C++ against the numpy
#      reference), run through its click group (the `cipherfuse` entry point imports
#      every command group, and with them JAX, which is not installed here);
#   3. pytest on the tests that need only numpy: tests/he (without tests/he/nn and the
#      two seeded tests that import jax) and tests/mpc/test_share_kernels.py;
#   4. the numpy-only benchmarks once each with --benchmark-disable (a smoke run:
#      timings under emulation say nothing about a Jetson's speed).
# SUMMARY_JSON (optional) receives the wheel's tags, `auditwheel show` and the counts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT_DIR="$PWD"
WHEEL="$(realpath "$1")"
SUMMARY="${2:-}"
ARM64_ROOT="${CIPHERFUSE_ARM64_ROOT:-$ROOT_DIR/build/arm64-root}"
[ -x "$ARM64_ROOT/usr/bin/python3" ] || { echo "no arm64 root at $ARM64_ROOT (tools/make-arm64-root.sh)" >&2; exit 1; }
PYVER="$(basename "$(ls -d "$ARM64_ROOT"/usr/lib/python3.[0-9]* | sort -V | tail -1)" | sed 's/python//')"

# 1. Host side: PyPI's aarch64 wheels for the test dependencies.
WHEELHOUSE="$ROOT_DIR/build/aarch64-wheelhouse"
mkdir -p "$WHEELHOUSE"
python3 -m pip download -q --only-binary=:all: --implementation cp \
  --python-version "$PYVER" --abi "cp${PYVER/./}" --platform manylinux_2_28_aarch64 \
  --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 -d "$WHEELHOUSE" \
  "numpy>=2.0" "click>=8.1" "pytest>=8" "hypothesis>=6.100" "cryptography>=42" \
  "pytest-benchmark>=4" 2> >(grep -v "is ignored" >&2)

# 2. Stage the wheel, the tests and the benchmarks inside the root (tests import
#    `tests.he.conftest`, so the tree keeps its layout; the package comes from the wheel).
STAGE="$ARM64_ROOT/opt/cipherfuse-test"
rm -rf "$STAGE" && mkdir -p "$STAGE/src" "$STAGE/out"
cp "$WHEEL" "$STAGE/"
cp -r "$WHEELHOUSE" "$STAGE/wheelhouse"
cp -r tests bench "$STAGE/src/"
find "$STAGE/src" -name __pycache__ -prune -exec rm -rf {} +
# Hypothesis's per-example deadline measures the emulator, not the code: lift it.
cat > "$STAGE/src/qemu_hypothesis_profile.py" <<'PY'
"""pytest plugin: Hypothesis without per-example deadlines (the run is emulated)."""

from hypothesis import settings

settings.register_profile("qemu", deadline=None)
settings.load_profile("qemu")
PY

cat > "$STAGE/run.sh" <<EOF
set -euo pipefail
cd /opt/cipherfuse-test
python3 -m venv venv
venv/bin/pip install -q --no-index --find-links wheelhouse numpy click pytest hypothesis \
  cryptography pytest-benchmark
# --no-deps: the full dependency set (jax, web3, ...) is not needed for these checks.
venv/bin/pip install -q --no-deps "/opt/cipherfuse-test/$(basename "$WHEEL")"
cd src
../venv/bin/python -c 'import platform, cipherfuse._core as c; isa = c.best_isa(); print("machine", platform.machine(), "best_isa", isa); assert platform.machine() == "aarch64" and isa == "neon", isa'
../venv/bin/python -c 'import platform; print(platform.machine(), platform.libc_ver())' > ../out/platform.txt
../venv/bin/python -c 'import cipherfuse._core as c; print(c.best_isa())' > ../out/best_isa.txt
# The \`cipherfuse he selftest\` command itself; called through its click group, because the
# \`cipherfuse\` entry point imports every command group and with them JAX.
../venv/bin/python -c 'from cipherfuse.cli.he_commands import he_group; he_group(["selftest"], prog_name="cipherfuse he")' | tee ../out/selftest.txt
# The three deselected tests import cipherfuse.he.nn, whose __init__ imports JAX.
status=0
PYTHONPATH=. ../venv/bin/python -m pytest -q -p no:cacheprovider -p qemu_hypothesis_profile \
  --junitxml=../out/tests.xml tests/he tests/mpc/test_share_kernels.py \
  --ignore=tests/he/nn --ignore=tests/he/test_seeded_finish.py \
  --ignore=tests/he/test_seeded_prefix.py \
  --deselect tests/he/test_conv_direct.py::test_encrypted_conv_is_the_same_ciphertext_on_every_kernel \
  --deselect tests/he/test_conv_direct.py::test_noise_budget_is_checked_before_the_kernel_runs \
  --deselect tests/he/test_conv_direct.py::test_bad_geometry_is_a_parameter_error || status=1
# bench_he_seeded.py's test_prefix1000_* benchmarks need JAX.
../venv/bin/python -m pytest -q -p no:cacheprovider --benchmark-disable \
  --junitxml=../out/bench.xml bench/bench_he.py bench/bench_he_seeded.py \
  bench/bench_mpc_kernels.py -k "not test_prefix1000" || status=1
exit \$status
EOF

status=0
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  nice proot -0 -q qemu-aarch64-static -r "$ARM64_ROOT" -w / -b /dev -b /proc -b /sys \
  /bin/bash /opt/cipherfuse-test/run.sh || status=$?

if [ -n "$SUMMARY" ]; then
  python3 tools/summarize_wheel_test.py --wheel "$WHEEL" --out-dir "$STAGE/out" \
    --summary "$SUMMARY"
fi
exit "$status"
