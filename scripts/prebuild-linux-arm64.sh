#!/usr/bin/env bash
# Cross-compiles the Linux arm64 addon on x64:
# prebuilds/linux-arm64/handover.glibc.node.
#
# Needs Debian's g++-aarch64-linux-gnu (scripts/install-arm64-toolchain.sh).
# prebuildify and node-gyp build it from binding.gyp, like the x64 prebuild,
# with the cross-compiler as CC/CXX. Works in build-linux-arm64/, never in
# build/, which node-gyp owns for this machine's addon.
set -euo pipefail
cd "$(dirname "$0")/.."

CROSS=aarch64-linux-gnu
if ! command -v "$CROSS-g++" >/dev/null; then
  echo "prebuild:linux-arm64: $CROSS-g++ not found." >&2
  echo "  Install it with: bash scripts/install-arm64-toolchain.sh (apt-get install -y g++-aarch64-linux-gnu)" >&2
  # prepack (scripts/prepack.mjs) does not call this without the compiler.
  exit 1
fi

work=build-linux-arm64
rm -rf "$work"
mkdir -p "$work" prebuilds
cp -r binding.gyp package.json native "$work/"
ln -s ../node_modules "$work/node_modules"
(
  cd "$work"
  # Headers from this Node's install (npm_config_nodedir), never a download.
  CC="$CROSS-gcc" CXX="$CROSS-g++" LINK="$CROSS-g++" AR="$CROSS-ar" PREBUILD_STRIP_BIN="$CROSS-strip" \
    npm_config_nodedir="${npm_config_nodedir:-$(dirname "$(dirname "$(command -v node)")")}" \
    npx --no-install prebuildify --napi --strip --tag-libc --arch arm64 --platform linux
)
rm -rf prebuilds/linux-arm64
cp -r "$work/prebuilds/linux-arm64" prebuilds/
for f in prebuilds/linux-arm64/*.node; do
  echo "prebuild:linux-arm64: wrote $f ($(stat -c %s "$f") bytes)"
done
