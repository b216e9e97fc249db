# HE core: the AArch64 cross compiler and qemu-user, so CI builds the NEON
# kernels and runs their C++ tests (bit-exact against the scalar reference).
if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq g++-aarch64-linux-gnu qemu-user >/dev/null
fi
