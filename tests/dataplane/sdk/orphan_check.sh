#!/usr/bin/env bash
# Proves that a node test killed half-way leaves no spillway process behind: runs RUN_SCRIPT with
# the test held once its processes are up (SPILLWAY_TEST_HOLD=1), kills the script with SIGTERM
# (what ctest sends on a timeout) and, in a second run, SIGKILL, and fails if any agent, mock or
# control plane of that run outlives it.
# Usage: orphan_check.sh RUN_SCRIPT WORK_DIR EXPECTED ; EXPECTED: how many spillway processes the
# test starts; the variables RUN_SCRIPT needs are set.
set -euo pipefail
run_script=$1
work=$2
expected=$3
# Guards against hangs, not bounds on speed: the first run may install the npm packages, and the
# machine may be loaded.
start_timeout_s=240
exit_timeout_s=60

# The spillway processes whose environment carries `token` (each run's children inherit it).
processes_of() {
  local token=$1 dir
  for dir in /proc/[0-9]*; do
    case "$(readlink "$dir/exe" 2>/dev/null)" in
      */spillway-agent | */spillway-mock-aoai | */spillway-cp) ;;
      *) continue ;;
    esac
    if tr '\0' '\n' <"$dir/environ" 2>/dev/null | grep -qx "SPILLWAY_ORPHAN_TOKEN=$token"; then
      echo "${dir#/proc/}"
    fi
  done
}

runner=
token=
log=$(mktemp)
# Whatever this check started dies with it, even when it fails half-way.
cleanup() {
  if [ -n "$runner" ]; then kill -KILL "$runner" 2>/dev/null || true; fi
  if [ -n "$token" ]; then
    for pid in $(processes_of "$token"); do kill -KILL "$pid" 2>/dev/null || true; done
  fi
  rm -f "$log"
}
trap cleanup EXIT

fail() {
  echo "orphan_check: $*" >&2
  echo "--- output of $run_script:" >&2
  cat "$log" >&2
  exit 1
}

for signal in TERM KILL; do
  token="$signal-$$-$RANDOM$RANDOM"
  : >"$log"
  SPILLWAY_TEST_HOLD=1 SPILLWAY_ORPHAN_TOKEN=$token "$run_script" "$work" >"$log" 2>&1 &
  runner=$!

  deadline=$((SECONDS + start_timeout_s))
  until grep -q 'spillway-test-holding' "$log"; do
    kill -0 "$runner" 2>/dev/null || fail "$run_script ended before its processes were up"
    [ "$SECONDS" -lt "$deadline" ] || fail "$run_script did not start in ${start_timeout_s}s"
    sleep 0.2
  done
  started=$(processes_of "$token" | wc -l)
  # Fewer would make the check below vacuous: it would not be testing those processes.
  [ "$started" -ge "$expected" ] || fail "found $started of the $expected processes started"

  kill -"$signal" "$runner"
  wait "$runner" 2>/dev/null || true
  runner=

  deadline=$((SECONDS + exit_timeout_s))
  while left=$(processes_of "$token") && [ -n "$left" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      # shellcheck disable=SC2086
      ps -o pid,ppid,pgid,args -p $left >&2 || true
      fail "SIG$signal to $run_script left $(wc -w <<<"$left") process(es) running"
    fi
    sleep 0.2
  done
  echo "orphan_check: SIG$signal to $run_script: all $started processes ended with it"
done
