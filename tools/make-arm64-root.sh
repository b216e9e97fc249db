#!/usr/bin/env bash
# Make an arm64 Debian (bookworm) root with python3, venv and the Python headers, for
# building and testing the aarch64 wheel on an x86-64 host:
#
#   tools/make-arm64-root.sh [ROOT]        (default ROOT: build/arm64-root)
#
# debootstrap --foreign unpacks the packages; the second stage (dpkg configuring them)
# runs arm64 binaries, here under proot + qemu-aarch64-static, so no binfmt_misc
# registration, chroot or privileges are needed. Needs (Debian packages): debootstrap,
# proot, qemu-user-static. Everything comes from the Debian archive.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="${1:-${CIPHERFUSE_ARM64_ROOT:-$PWD/build/arm64-root}}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
for tool in debootstrap proot qemu-aarch64-static; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool (apt-get install debootstrap proot qemu-user-static)" >&2; exit 1; }
done
if [ -x "$ROOT/usr/bin/python3" ] && [ ! -e "$ROOT/debootstrap" ]; then
  echo "$ROOT: already made"; exit 0
fi
rm -rf "$ROOT"
nice debootstrap --arch=arm64 --foreign --variant=minbase \
  --include=python3,python3-venv,libpython3.11-dev bookworm "$ROOT" "$MIRROR"
DEBOOTSTRAP_DIR=/debootstrap nice proot -0 -q qemu-aarch64-static -r "$ROOT" -w / \
  -b /dev -b /proc -b /sys /debootstrap/debootstrap --second-stage
test -x "$ROOT/usr/bin/python3"
echo "$ROOT: arm64 Debian root ready"
