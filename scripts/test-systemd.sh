#!/usr/bin/env bash
# The systemd lane: handover services under a real systemd, booted in
# systemd-nspawn containers: Debian trixie (systemd 257) and bookworm (252).
#
#   npm run test:systemd
#
# 1. installs systemd-container and mmdebstrap from Debian if they are
#    missing (as root);
# 2. builds dist/ (and the addon if build/ has none);
# 3. builds a minbase root per suite with mmdebstrap (about a minute each,
#    side by side), cached in $DEV_CACHE_DIR/nspawn-roots (default ~/.cache/handover-dev),
#    keyed by suite and package list;
# 4. boots each root (side by side) with a throwaway overlay (--volatile=overlay, so the
#    cache stays clean), the checkout read-only at /srv/ho and the host's
#    node at /usr/bin/node, and runs test/systemd-lane/lane.mjs against it:
#    the units in examples/systemd/, copied in unchanged.
#
# Prints "systemd lane: N passed, N failed" and, if SYSTEMD_LANE_REPORT
# names a file, writes "N N" there for .ci/run. Exits non-zero on any
# failure. HANDOVER_SKIP_SYSTEMD=1 skips the lane, and says so loudly; so
# does a machine where systemd-nspawn cannot boot a container, with the
# reason.
set -uo pipefail
cd "$(dirname "$0")/.."
checkout="$(pwd)"
started=$SECONDS
report="${SYSTEMD_LANE_REPORT:-}"
suites="${SYSTEMD_LANE_SUITES:-trixie bookworm}"
include="systemd,systemd-sysv,dbus,curl,procps"

finish() {
  local passed=$1 failed=$2
  echo "systemd lane: $passed passed, $failed failed ($((SECONDS - started)) s)"
  [ -n "$report" ] && echo "$passed $failed" > "$report"
  [ "$failed" -eq 0 ]
  exit $?
}

skip() {
  echo "=================================================================="
  echo "SKIPPED: the systemd lane did not run: $1"
  echo "         No systemd test passed; none was tried."
  echo "=================================================================="
  [ -n "$report" ] && echo "0 0 1" > "$report"
  exit 0
}

[ "${HANDOVER_SKIP_SYSTEMD:-}" = 1 ] && skip "HANDOVER_SKIP_SYSTEMD=1."
# Never passed on to the processes under test.
unset HANDOVER_SKIP_SYSTEMD
[ "$(id -u)" = 0 ] || skip "it needs root (systemd-nspawn, mmdebstrap); this is uid $(id -u)."

# --- 1. tools -------------------------------------------------------------
if ! command -v systemd-nspawn >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v nsenter >/dev/null; then
  if ! command -v apt-get >/dev/null || ! { apt-get update && apt-get install -y --no-install-recommends systemd-container mmdebstrap; }; then
    echo "test:systemd: systemd-container and mmdebstrap are missing and could not be installed with apt-get"
    finish 0 1
  fi
fi

# --- 2. build -------------------------------------------------------------
if [ ! -f build/Release/handover.node ] && ! npm run --silent build:native; then
  echo "test:systemd: the addon did not build"
  finish 0 1
fi
if ! npm run --silent build:ts; then
  echo "test:systemd: build failed"
  finish 0 1
fi

# The host's node, bound at the path the units name. It must run on each
# root's glibc (it does when the host is as old as the oldest root).
node_bin="$(readlink -f "$(command -v node)")"
host_glibc="$(ldd --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+$')"
echo "test:systemd: node $("$node_bin" -v) from $node_bin, host glibc $host_glibc"

# --- 3. roots -------------------------------------------------------------
cache="${DEV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/handover-dev}/nspawn-roots"
key="$(printf '%s' "$include" | sha256sum | cut -c1-12)"
mkdir -p "$cache"
out="$(mktemp -d "${TMPDIR:-/tmp}/handover-systemd-XXXXXX")"

builders=()
runners=()
# Stops one container by the pid of its systemd-nspawn: SIGTERM asks the
# container's systemd to power off; SIGKILL if it hangs.
stop_container() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null
}
cleanup() {
  local f
  for pid in "${builders[@]}" "${runners[@]}"; do kill "$pid" 2>/dev/null; done
  for f in "$out"/lane-pid-*; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  # All containers are asked to power off at once, then each is waited for.
  for f in "$out"/nspawn-pid-*; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  for f in "$out"/nspawn-pid-*; do
    [ -f "$f" ] || continue
    stop_container "$(cat "$f")"
    rm -f "$f"
  done
}
trap 'cleanup; rm -rf "$out"' EXIT
trap 'exit 130' INT TERM

root_for() {
  local suite=$1 root="$cache/$1-$key"
  if [ ! -x "$root/usr/lib/systemd/systemd" ] && [ ! -x "$root/lib/systemd/systemd" ]; then
    echo "test:systemd: building the $suite root with mmdebstrap (about a minute, once per machine)" >&2
    # A private temporary name: another lane on this machine may be building too.
    local tmp="$root.tmp.$$"
    rm -rf "$tmp"
    if ! mmdebstrap --variant=minbase --include="$include" "$suite" "$tmp" >"$out/mmdebstrap-$suite.log" 2>&1; then
      echo "test:systemd: mmdebstrap $suite failed:" >&2
      tail -20 "$out/mmdebstrap-$suite.log" >&2
      rm -rf "$tmp"
      return 1
    fi
    if [ -x "$root/usr/lib/systemd/systemd" ] || [ -x "$root/lib/systemd/systemd" ]; then
      rm -rf "$tmp"
    else
      rm -rf "$root"
      mv "$tmp" "$root"
    fi
  fi
  echo "$root"
}

# Boots ROOT for SUITE; sets nspawn_pid and init_pid, or says why not and
# returns 1 (nspawn could not start a container) or 2 (systemd did not come up).
boot() {
  local root=$1 suite=$2 log="$out/nspawn-$2.log" i state c
  init_pid=
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -D "$root" --volatile=overlay --boot --register=no --keep-unit \
    --console=passive --private-network --machine="handover-lane-$$-$suite" \
    --bind-ro="$node_bin:/usr/bin/node" --bind-ro="$checkout:/srv/ho" >"$log" 2>&1 &
  nspawn_pid=$!
  echo "$nspawn_pid" >"$out/nspawn-pid-$suite"
  # The container's init: nspawn's child that is pid 1 in its own namespace
  # (a short-lived helper comes first).
  for i in $(seq 300); do
    for c in $(ps -o pid= --ppid "$nspawn_pid" 2>/dev/null); do
      grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$c/status" 2>/dev/null && init_pid=$c
    done
    [ -n "$init_pid" ] && break
    kill -0 "$nspawn_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$init_pid" ]; then
    echo "systemd-nspawn exited before its container started:"
    tail -20 "$log"
    return 1
  fi
  # Until its D-Bus is up, systemctl cannot even ask.
  for i in $(seq 600); do
    state="$(timeout 90 nsenter -t "$init_pid" -a -- systemctl is-system-running --wait 2>&1)"
    case "$state" in running | degraded | stopping | maintenance) break ;; esac
    kill -0 "$init_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$state" != running ] && [ "$state" != degraded ]; then
    echo "the container's systemd did not come up (is-system-running: $state):"
    tail -20 "$log"
    return 2
  fi
  [ "$state" = degraded ] && nsenter -t "$init_pid" -a -- systemctl --failed --no-legend
  return 0
}

# Missing roots are built side by side: on a fresh machine that is most of the lane's time.
for suite in $suites; do
  root_for "$suite" >"$out/root-$suite" &
  builders+=($!)
done
for builder in "${builders[@]}"; do wait "$builder"; done

# --- 4. per suite, side by side ------------------------------------------------
# Runs in the background; its output goes to $out/log-SUITE, its counts to
# $out/counts-SUITE, and a boot failure's kind to $out/boot-failed-SUITE.
run_suite() {
  local suite=$1 root t status
  root="$(cat "$out/root-$suite" 2>/dev/null)"
  if [ -z "$root" ]; then
    echo "test:systemd: $suite: no root"
    echo "0 1" >"$out/counts-$suite"
    return
  fi
  t=$SECONDS
  boot "$root" "$suite"
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "$status" >"$out/boot-failed-$suite"
    echo "0 1" >"$out/counts-$suite"
    stop_container "$nspawn_pid"
    return
  fi
  echo "test:systemd: $suite: $(nsenter -t "$init_pid" -a -- systemctl --version | head -1), booted in $((SECONDS - t)) s"
  node test/systemd-lane/lane.mjs "$init_pid" "$out/counts-$suite" &
  echo $! >"$out/lane-pid-$suite"
  wait $!
  rm -f "$out/lane-pid-$suite"
  stop_container "$nspawn_pid"
  rm -f "$out/nspawn-pid-$suite"
}

for suite in $suites; do
  run_suite "$suite" >"$out/log-$suite" 2>&1 &
  runners+=($!)
done
for runner in "${runners[@]}"; do wait "$runner"; done
runners=()

# nspawn failing to start any container means this machine cannot run
# containers at all (no privileges, cgroups, namespaces...): skip the lane,
# loudly. A container whose systemd fails to come up is a failure.
unbootable=1
for suite in $suites; do
  [ "$(cat "$out/boot-failed-$suite" 2>/dev/null)" = 1 ] || unbootable=0
done
if [ "$unbootable" = 1 ] && [ "${SYSTEMD_LANE_NO_SKIP:-}" != 1 ]; then
  for suite in $suites; do cat "$out/log-$suite"; done
  skip "systemd-nspawn cannot boot a container on this machine (see above)."
fi

passed=0
failed=0
for suite in $suites; do
  cat "$out/log-$suite"
  if read -r p f < "$out/counts-$suite" 2>/dev/null; then
    passed=$((passed + p))
    failed=$((failed + f))
  else
    echo "test:systemd: $suite: the lane produced no counts"
    failed=$((failed + 1))
  fi
done
finish "$passed" "$failed"
