#!/usr/bin/env bash
# Installs what the linux-arm64 prebuild and the arm64 lane need, from
# Debian: the aarch64 C++ cross-compiler (with the arm64 glibc and libstdc++
# under /usr/aarch64-linux-gnu, which qemu uses as its root) and qemu-user.
# About 30 s and 250 MiB. Does nothing if they are there already.
set -uo pipefail

missing=()
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing ${missing[*]} (about 30 s)"
apt=(apt-get -o DPkg::Lock::Timeout=300)
[ "$(id -u)" -ne 0 ] && apt=(sudo -n "${apt[@]}")
export DEBIAN_FRONTEND=noninteractive
"${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null && exit 0
# A fresh image may have no package lists yet.
"${apt[@]}" update >/dev/null && "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null && exit 0
echo "could not install ${missing[*]}" >&2
exit 1
