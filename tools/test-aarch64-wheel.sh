#!/usr/bin/env bash
# Install the aarch64 wheel into an arm64 Python under qemu and test it:
#
#   tools/test-aarch64-wheel.sh WHEEL [SUMMARY_JSON]
#
# Runs in the arm64 Debian root of tools/make-arm64-root.sh (CIPHERFUSE_ARM64_ROOT,
# default build/arm64-root) through proot + qemu-aarch64-static. The dependencies are
# PyPI's aarch64 wheels, fetched on the host by `pip download --platform`; the emulated
# pip installs them offline. Checked, in order (1 and 2 stop the run; a pytest failure
# still lets the later steps run and the summary be written, and the exit status is
# nonzero):
#   1. the run-time dispatcher picks NEON: cipherfuse._core.best_isa() == "neon";
#   2. the `cipherfuse he selftest` command (every HE operation, C++ against the numpy
#      reference), run through its click group (the `cipherfuse` entry point imports
#      every command group, and with them web3 and the chain stack, not installed here);
#   3. pytest on tests/he (without tests/he/nn and the two seeded tests that train JAX
#      models), tests/mpc/test_share_kernels.py and tests/mpc/test_randomness.py. JAX,
#      flax and optax are installed: cipherfuse.mpc and cipherfuse.he.nn import
#      cipherfuse.nn, whose compilation cache imports JAX;
#   4. bench/bench_mpc_kernels.py once with --benchmark-disable (a smoke run of the
#      NEON kernels against their numpy baseline, correctness asserted; timings under
#      emulation say nothing about a Jetson's speed and are not recorded).
# tests/he/nn, the seeded-finish/prefix tests and the MPC protocol and channel tests are
# not run here (XLA compiling under the emulator makes them too slow for this check).
# SUMMARY_JSON (optional) receives the wheel's tags, `auditwheel show` and the counts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT_DIR="$PWD"
WHEEL="$(realpath "$1")"
SUMMARY="${2:-}"
ARM64_ROOT="${CIPHERFUSE_ARM64_ROOT:-$ROOT_DIR/build/arm64-root}"
[ -x "$ARM64_ROOT/usr/bin/python3" ] || { echo "no arm64 root at $ARM64_ROOT (tools/make-arm64-root.sh)" >&2; exit 1; }
PYVER="$(basename "$(ls -d "$ARM64_ROOT"/usr/lib/python3.[0-9]* | sort -V | tail -1)" | sed 's/python//')"

# 1. Host side: PyPI's aarch64 wheels for the dependencies, at the versions pyproject.toml
#    allows (base: the numpy-only steps; jax: the JAX stack and the rest of the tests' needs).
WHEELHOUSE="$ROOT_DIR/build/aarch64-wheelhouse"
mkdir -p "$WHEELHOUSE"
python3 - "$WHEELHOUSE" <<'PY'
import re, sys, tomllib
from pathlib import Path
project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
specs = project["dependencies"] + project["optional-dependencies"]["test"]
by_name = {re.match(r"[A-Za-z0-9_.-]+", s.split("#")[0]).group(0).lower(): s.split("#")[0].strip() for s in specs}
groups = {
    "base": ["numpy", "click", "cryptography", "pytest", "hypothesis", "pytest-benchmark"],
    "jax": ["jax", "jaxlib", "flax", "optax", "msgpack", "tqdm", "scipy", "noiseprotocol"],
}
for group, names in groups.items():
    Path(sys.argv[1], f"{group}.txt").write_text("".join(by_name[n] + "\n" for n in names))
PY
python3 -m pip download -q --only-binary=:all: --implementation cp \
  --python-version "$PYVER" --abi "cp${PYVER/./}" --platform manylinux_2_28_aarch64 \
  --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 \
  --platform manylinux2014_aarch64 -d "$WHEELHOUSE" \
  -r "$WHEELHOUSE/base.txt" -r "$WHEELHOUSE/jax.txt" 2> >(grep -v "is ignored" >&2)

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

# The pytest arguments of steps 3 and 4, one per line (the summary quotes them).
printf '%s\n' tests/he tests/mpc/test_share_kernels.py tests/mpc/test_randomness.py \
  --ignore=tests/he/nn --ignore=tests/he/test_seeded_finish.py \
  --ignore=tests/he/test_seeded_prefix.py > "$STAGE/out/tests.args"
printf '%s\n' bench/bench_mpc_kernels.py --benchmark-disable > "$STAGE/out/bench.args"

cat > "$STAGE/run.sh" <<EOF
set -euo pipefail
cd /opt/cipherfuse-test
python3 -m venv venv
venv/bin/pip install -q --no-index --find-links wheelhouse -r wheelhouse/base.txt \
  -r wheelhouse/jax.txt
# --no-deps: the full dependency set (web3, the chain stack, ...) is not needed here.
venv/bin/pip install -q --no-deps "/opt/cipherfuse-test/$(basename "$WHEEL")"
cd src
../venv/bin/python -c 'import platform, cipherfuse._core as c; isa = c.best_isa(); print("machine", platform.machine(), "best_isa", isa); assert platform.machine() == "aarch64" and isa == "neon", isa'
../venv/bin/python -c 'import platform; print(platform.machine(), platform.libc_ver())' > ../out/platform.txt
../venv/bin/python -c 'import cipherfuse._core as c; print(c.best_isa())' > ../out/best_isa.txt
# The \`cipherfuse he selftest\` command itself, called through its click group.
../venv/bin/python -c 'from cipherfuse.cli.he_commands import he_group; he_group(["selftest"], prog_name="cipherfuse he")' | tee ../out/selftest.txt
status=0
pytest() { PYTHONPATH=. ../venv/bin/python -m pytest -q -p no:cacheprovider -p qemu_hypothesis_profile "\$@"; }
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
