#!/usr/bin/env bash
# The whole suite several times in a row under `ctest -j2` while unrelated busy loops hog the
# CPU: the proof that a red run means a bug rather than a slow machine (issue 17).
#   tests/soak-suite.sh [ROUNDS] [ctest args]    ROUNDS defaults to 3
#   SOAK_HOGS=N                                   busy loops beside the suite (default 1)
# Stops at the first failing round; prints each round's time and the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  ROUNDS=$1
  shift
fi
HOGS=${SOAK_HOGS:-1}
deploy/install-deps.sh
deploy/build.sh

hogs=()
stop_hogs() {
  if [ ${#hogs[@]} -gt 0 ]; then
    kill "${hogs[@]}" 2>/dev/null || true
    wait "${hogs[@]}" 2>/dev/null || true
  fi
}
trap stop_hogs EXIT INT TERM
for ((i = 0; i < HOGS; i++)); do
  # A plain busy loop: CPU pressure without memory or I/O, like a neighbour's build.
  bash -c 'while :; do :; done' &
  hogs+=($!)
done

cd build
for ((round = 1; round <= ROUNDS; round++)); do
  echo "soak: round $round of $ROUNDS with $HOGS busy loop(s), load $(cut -d' ' -f1-3 /proc/loadavg)"
  start=$(date +%s)
  if ! ctest --output-on-failure --timeout 900 -j2 "$@"; then
    echo "soak: round $round FAILED after $(($(date +%s) - start)) s"
    exit 1
  fi
  echo "soak: round $round passed in $(($(date +%s) - start)) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "soak: $ROUNDS of $ROUNDS rounds passed"
