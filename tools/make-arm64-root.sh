#!/usr/bin/env bash
# Make an arm64 Debian (bookworm) root with python3, venv and the Python headers, for
# building and testing the aarch64 wheel on an x86-64 host:
#
#   tools/make-arm64-root.sh [--configure] [ROOT]     (default ROOT: build/arm64-root)
#
# `debootstrap --arch=arm64 --foreign` resolves and downloads the packages from the Debian
# archive and unpacks the essential ones. By default every downloaded package is then
# unpacked with `dpkg -x` on the host (seconds): the root runs python3 and its venv under
# qemu, but its maintainer scripts have not run, so it is a root to run Python in, not a
# system to apt-get in. --configure instead runs debootstrap's second stage (dpkg
# configuring every package) under proot + qemu-aarch64-static, which gives a complete
# Debian system and takes about 20 minutes on two busy cores. Neither needs
# binfmt_misc, chroot or privileges. Needs (Debian packages): debootstrap, proot,
# qemu-user-static.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONFIGURE=0
if [ "${1:-}" = --configure ]; then CONFIGURE=1; shift; fi
ROOT="${1:-${CIPHERFUSE_ARM64_ROOT:-$PWD/build/arm64-root}}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
for tool in debootstrap proot qemu-aarch64-static; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool (apt-get install debootstrap proot qemu-user-static)" >&2; exit 1; }
done
if [ -f "$ROOT/.cipherfuse-root-ready" ]; then
  echo "$ROOT: already made"; exit 0
fi
rm -rf "$ROOT"
nice debootstrap --arch=arm64 --foreign --variant=minbase \
  --include=python3,python3-venv,libpython3.11-dev bookworm "$ROOT" "$MIRROR"
if [ "$CONFIGURE" = 1 ]; then
  DEBOOTSTRAP_DIR=/debootstrap nice proot -0 -q qemu-aarch64-static -r "$ROOT" -w / \
    -b /dev -b /proc -b /sys /debootstrap/debootstrap --second-stage
else
  for deb in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg -x "$deb" "$ROOT"; done
fi
# The root must run: an arm64 python3 with venv, under the emulator.
env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
  proot -0 -q qemu-aarch64-static -r "$ROOT" -w / -b /dev -b /proc -b /sys \
  /usr/bin/python3 -c 'import platform, venv; assert platform.machine() == "aarch64"'
touch "$ROOT/.cipherfuse-root-ready"
echo "$ROOT: arm64 Debian root ready"
