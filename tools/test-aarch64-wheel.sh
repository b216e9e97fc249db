#!/usr/bin/env bash
# Install the aarch64 wheel into an arm64 Python under qemu and test it:
#
#   tools/test-aarch64-wheel.sh WHEEL [SUMMARY_JSON]
#
# Runs in the arm64 Debian root of tools/make-arm64-root.sh (CIPHERFUSE_ARM64_ROOT,
# default build/arm64-root) through proot + qemu-aarch64-static. The wheel is installed
# the way a user installs it, with every dependency it declares (JAX, web3 and the chain
# stack included), from PyPI's aarch64 wheels fetched on the host by
# `pip download --platform`; the emulated pip installs them offline and `pip check` must
# find no broken requirement. Checked, in order (1 and 2 stop the run; a pytest failure
# still lets the later steps run and the summary be written, and the exit status is
# nonzero):
#   1. the run-time dispatcher picks NEON: cipherfuse._core.best_isa() == "neon";
#   2. `cipherfuse he selftest` (the installed entry point; every HE operation, C++
#      against the numpy reference, correct and bit-identical);
#   3. pytest on tests/he, tests/he/nn and tests/mpc (sharing, arithmetic, boolean,
#      privacy and fault protocols, the committee channel, the share kernels, the
#      randomness), without the modules that XLA compiling and training under the
#      emulator make too slow for this check (tests/he/test_seeded_finish.py,
#      test_seeded_prefix.py, tests/he/nn/test_limb_kernel.py, test_fusion.py,
#      test_table11.py, tests/mpc/test_protocol_count.py) and the launcher tests
#      (tests/mpc/test_channel_launcher.py: each test starts three or more Pythons that
#      import JAX under the emulator, and times their signals). They run on the board.
#      MNIST is copied in from CIPHERFUSE_MNIST_DIR when it is set;
#   4. bench/bench_mpc_kernels.py once with --benchmark-disable (a smoke run of the
#      NEON kernels against their numpy baseline, correctness asserted; timings under
#      emulation say nothing about a Jetson's speed and are not recorded).
# SUMMARY_JSON (optional) receives the wheel's tags, `auditwheel show` and the results.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT_DIR="$PWD"
WHEEL="$(realpath "$1")"
SUMMARY="${2:-}"
ARM64_ROOT="${CIPHERFUSE_ARM64_ROOT:-$ROOT_DIR/build/arm64-root}"
[ -x "$ARM64_ROOT/usr/bin/python3" ] || { echo "no arm64 root at $ARM64_ROOT (tools/make-arm64-root.sh)" >&2; exit 1; }
PYVER="$(basename "$(ls -d "$ARM64_ROOT"/usr/lib/python3.[0-9]* | sort -V | tail -1)" | sed 's/python//')"

# 1. Host side: PyPI's aarch64 wheels for everything `pip install WHEEL` pulls in (the
#    wheel's full dependency set, web3 and the chain stack included) and for the test
#    tools, at the versions pyproject.toml allows; the emulated pip installs them offline.
WHEELHOUSE="$ROOT_DIR/build/aarch64-wheelhouse"
mkdir -p "$WHEELHOUSE"
python3 - "$WHEELHOUSE/test.txt" <<'PY'
import re, sys, tomllib
from pathlib import Path
specs = tomllib.loads(Path("pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
by_name = {re.match(r"[A-Za-z0-9_.-]+", s.split("#")[0]).group(0).lower(): s.split("#")[0].strip() for s in specs}
names = ["pytest", "hypothesis", "pytest-benchmark", "cryptography", "noiseprotocol"]
Path(sys.argv[1]).write_text("".join(by_name[n] + "\n" for n in names))
PY
python3 -m pip download -q --only-binary=:all: --implementation cp \
  --python-version "$PYVER" --abi "cp${PYVER/./}" --platform manylinux_2_34_aarch64 \
  --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 \
  --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 -d "$WHEELHOUSE" \
  "$WHEEL" -r "$WHEELHOUSE/test.txt" 2> >(grep -v "is ignored" >&2)
rm -f "$WHEELHOUSE"/cipherfuse-*.whl  # the wheel under test is installed from its own file

# 2. Stage the wheel, the tests, the benchmarks and (when CIPHERFUSE_MNIST_DIR names a
#    folder with the MNIST test set) MNIST inside the root. The tests import
#    `tests.he.conftest`, so the tree keeps its layout; the package comes from the wheel.
STAGE="$ARM64_ROOT/opt/cipherfuse-test"
rm -rf "$STAGE" && mkdir -p "$STAGE/src" "$STAGE/out" "$STAGE/mnist"
cp "$WHEEL" "$STAGE/"
cp -r "$WHEELHOUSE" "$STAGE/wheelhouse"
cp -r tests bench "$STAGE/src/"
find "$STAGE/src" -name __pycache__ -prune -exec rm -rf {} +
if [ -n "${CIPHERFUSE_MNIST_DIR:-}" ] && [ -d "$CIPHERFUSE_MNIST_DIR" ]; then
  cp "$CIPHERFUSE_MNIST_DIR"/t10k-*-idx*-ubyte.gz "$STAGE/mnist/" 2>/dev/null || true
fi
# Hypothesis's per-example deadline measures the emulator, not the code: lift it.
cat > "$STAGE/src/qemu_hypothesis_profile.py" <<'PY'
"""pytest plugin: Hypothesis without per-example deadlines (the run is emulated)."""

from hypothesis import settings

settings.register_profile("qemu", deadline=None)
settings.load_profile("qemu")
PY

# The pytest arguments of steps 3 and 4, one per line (the summary quotes them).
printf '%s\n' tests/he tests/mpc \
  --ignore=tests/he/test_seeded_finish.py --ignore=tests/he/test_seeded_prefix.py \
  --ignore=tests/he/nn/test_limb_kernel.py --ignore=tests/he/nn/test_fusion.py \
  --ignore=tests/he/nn/test_table11.py \
  --ignore=tests/mpc/test_protocol_count.py --ignore=tests/mpc/test_channel_launcher.py \
  > "$STAGE/out/tests.args"
printf '%s\n' bench/bench_mpc_kernels.py --benchmark-disable > "$STAGE/out/bench.args"

cat > "$STAGE/run.sh" <<EOF
set -euo pipefail
cd /opt/cipherfuse-test
python3 -m venv venv
# What a user runs: the wheel with every dependency it declares (offline, from the
# wheelhouse), plus the test tools. --no-compile: byte-compiling some hundred packages
# under the emulator costs minutes; the modules imported are compiled when first used.
venv/bin/pip install -q --no-compile --no-index --find-links wheelhouse \
  "/opt/cipherfuse-test/$(basename "$WHEEL")" -r wheelhouse/test.txt
venv/bin/pip check | tee out/install.txt
cd src
export CIPHERFUSE_MNIST_DIR=/opt/cipherfuse-test/mnist
../venv/bin/python -c 'import platform, cipherfuse._core as c; isa = c.best_isa(); print("machine", platform.machine(), "best_isa", isa); assert platform.machine() == "aarch64" and isa == "neon", isa'
../venv/bin/python -c 'import platform; print(platform.machine(), platform.libc_ver())' > ../out/platform.txt
../venv/bin/python -c 'import cipherfuse._core as c; print(c.best_isa())' > ../out/best_isa.txt
# The \`cipherfuse he selftest\` command of the installed entry point (exit status 1 on
# any mismatch, which stops the run).
../venv/bin/cipherfuse he selftest --json > ../out/selftest.json
../venv/bin/python -c 'import json; r = json.load(open("../out/selftest.json")); print("selftest:", "OK" if r["ok"] else "FAILED", "isa=" + r["isa"], len(r["rows"]), "operations")'
status=0
pytest() { PYTHONPATH=. ../venv/bin/python -m pytest -q -rs -p no:cacheprovider -p qemu_hypothesis_profile "\$@"; }
mapfile -t args < ../out/tests.args
pytest --junitxml=../out/tests.xml "\${args[@]}" || status=1
../venv/bin/python -c 'import jax; print("jax", jax.__version__, jax.devices())' | tee ../out/jax.txt
mapfile -t args < ../out/bench.args
pytest --junitxml=../out/bench.xml "\${args[@]}" || status=1
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
