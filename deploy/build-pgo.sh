#!/usr/bin/env bash
# Builds a profile-guided spillway-agent into DIR (default build-pgo/): an instrumented build, a
# training load through it, then the same tree rebuilt with the profile it wrote. Skipped when
# DIR's agent was built from the same sources and training. The agent to deploy and the one the
# benchmark measures (docs/performance.md: 16-20% less user time a request at one connection).
#
# The training is tests/bench/profile.py's load (the benchmark's topology, tenant key and
# bodies; nginx with canned Azure replies as the backend, wrk as the client): non-streaming
# requests at one, 32 and 256 connections, and SSE streams. It needs nginx and wrk (Debian's
# nginx-light and wrk; tests/bench/run.sh installs them). Paced streams are left out: their cost
# is almost all system time (user 2.9 of 17 µs an event), and they need the mock built here too.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib/steps.sh
DIR=${1:-build-pgo}
JOBS=$(nproc)
[ "$JOBS" -le 2 ] || JOBS=2
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

# The agent's sources as they are on disk (tracked files only), and this script, whose training
# decides the profile: a change to the docs or the tests does not call for a new build.
sources=$(git ls-files -z -- CMakeLists.txt common dataplane proto deploy/build-pgo.sh |
  xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ -x "$DIR/dataplane/spillway-agent" ] &&
  [ "$(cat "$DIR/pgo.stamp" 2>/dev/null)" = "$sources" ]; then
  echo "profile-guided agent in $DIR is current"
  exit 0
fi
rm -f "$DIR/pgo.stamp"
for tool in nginx wrk python3; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "build-pgo.sh: the training needs $tool (apt-get install nginx-light wrk)" >&2
    exit 1
  }
done

configure() {
  step "configuring ($1)" pgo-configure.log cmake -S . -B "$DIR" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPILLWAY_WERROR=ON -DSPILLWAY_PGO="$1"
}

configure generate
find "$DIR" -name '*.gcda' -delete  # a profile of older code would only mislead
build_step pgo-generate.log cmake --build "$DIR" -j"$JOBS" --target spillway-agent
train() {
  python3 tests/bench/profile.py --build "$DIR" --mode cpu --kind chat --connections 1 \
    --requests 5000
  python3 tests/bench/profile.py --build "$DIR" --mode cpu --kind both --connections 32 \
    --requests 30000
  # 256 connections wake the agent with many ready sockets at once: a different mix of paths.
  python3 tests/bench/profile.py --build "$DIR" --mode cpu --kind chat --connections 256 \
    --requests 30000
}
step "training" pgo-train.log train
if [ -z "$(find "$DIR" -name '*.gcda' -print -quit)" ]; then
  echo "build-pgo.sh: the training wrote no profile (see $LOG_DIR/pgo-train.log)" >&2
  exit 1
fi
configure use
build_step pgo-use.log cmake --build "$DIR" -j"$JOBS" --target spillway-agent
echo "$sources" >"$DIR/pgo.stamp"
echo "profile-guided agent: $DIR/dataplane/spillway-agent"
