#!/usr/bin/env bash
# Cross-compiles the Windows addon on Linux: prebuilds/win32-x64/handover.node.
#
# Needs the Debian packages g++-mingw-w64-x86-64-posix and
# binutils-mingw-w64-x86-64 (the posix-thread compiler: the win32-thread one
# lacks std::mutex), node-api-headers from devDependencies and node-addon-api
# (no C++ exceptions, as in binding.gyp). node.exe
# itself is not needed: the import library comes from node-api-headers' def
# file. Works in build-win32/, never in build/, which node-gyp owns.
set -euo pipefail
cd "$(dirname "$0")/.."

CXX=x86_64-w64-mingw32-g++-posix
DLLTOOL=x86_64-w64-mingw32-dlltool
for tool in "$CXX" "$DLLTOOL"; do
  if ! command -v "$tool" >/dev/null; then
    echo "prebuild:win32: $tool not found." >&2
    echo "  Install it with: apt-get install -y g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64" >&2
    # prepack (scripts/prepack.mjs) does not call this without the compiler.
    exit 1
  fi
done

headers=node_modules/node-api-headers
if [ ! -f "$headers/def/node_api.def" ]; then
  echo "prebuild:win32: $headers is missing; run npm install" >&2
  exit 1
fi

work=build-win32
out=prebuilds/win32-x64
rm -rf "$work"
mkdir -p "$work" "$out"

# node.exe exports the Node-API functions; the def file lists them.
"$DLLTOOL" -d "$headers/def/node_api.def" -l "$work/libnode.a" -D node.exe

# Static runtime, so the addon imports nothing but node.exe, KERNEL32,
# msvcrt and WS2_32; -s strips it to about 200 KB.
"$CXX" -std=c++17 -O2 -Wall -Wextra -Werror -shared -fno-exceptions \
  -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_CPP_EXCEPTIONS -DNODE_GYP_MODULE_NAME=handover -D_WIN32_WINNT=0x0A00 \
  -I"$headers/include" -Inode_modules/node-addon-api \
  native/win/sockets.cc \
  -o "$work/handover.node" \
  -L"$work" -lnode -static -static-libgcc -static-libstdc++ -s -lws2_32

cp "$work/handover.node" "$out/handover.node"
echo "prebuild:win32: wrote $out/handover.node ($(stat -c %s "$out/handover.node") bytes)"
