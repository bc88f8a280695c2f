#!/usr/bin/env bash
# Configures and builds Spillway into build/ (Release-with-debug-info, ccache when present,
# never more parallel jobs than cores: the reference machine has 2).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
[ "$JOBS" -le 2 ] || JOBS=2
[ -f build/CMakeCache.txt ] || cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS" "$@"
