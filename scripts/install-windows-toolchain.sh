#!/usr/bin/env bash
# Installs what the Windows prebuild and the Windows lane need, from Debian:
# Wine (64-bit) and the mingw-w64 posix-thread C++ cross-compiler. About
# 20 s and 940 MiB. Does nothing if they are there already.
set -uo pipefail

missing=()
command -v wine >/dev/null || missing+=(wine wine64)
command -v x86_64-w64-mingw32-g++-posix >/dev/null || missing+=(g++-mingw-w64-x86-64-posix)
command -v x86_64-w64-mingw32-dlltool >/dev/null || missing+=(binutils-mingw-w64-x86-64)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing ${missing[*]} (about 20 s)"
apt=(apt-get -o DPkg::Lock::Timeout=300)
[ "$(id -u)" -ne 0 ] && apt=(sudo -n "${apt[@]}")
export DEBIAN_FRONTEND=noninteractive
"${apt[@]}" install -y "${missing[@]}" >/dev/null && exit 0
# A fresh image may have no package lists yet.
"${apt[@]}" update >/dev/null && "${apt[@]}" install -y "${missing[@]}" >/dev/null && exit 0
echo "could not install ${missing[*]}" >&2
exit 1
