#!/usr/bin/env bash
# Configures and builds Spillway into build/ (Release-with-debug-info, warnings as errors for
# project code, ccache when present, never more parallel jobs than cores: the reference
# machine has 2). Prints one line per phase; the compiler's output goes to .logs/build.log.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib/steps.sh
JOBS=$(nproc)
[ "$JOBS" -le 2 ] || JOBS=2
# A fresh clone in another folder still hits the cache: paths are taken relative to it.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
if [ ! -f build/CMakeCache.txt ]; then
  step "configuring" configure.log cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSPILLWAY_WERROR=ON
fi
build_step build.log cmake --build build -j"$JOBS" "$@"
