#!/usr/bin/env bash
# The one command for issue 6's benchmark: installs nginx and wrk from Debian if missing, builds
# what the benchmark runs, installs the Portkey gateway from npm into the build directory (for
# the comparison rows), builds the profile-guided agent (deploy/build-pgo.sh; --plain-agent
# measures the build directory's instead), then tests/bench/bench.py (arguments are passed on:
# --quick, --only c1,c32,..., --build DIR, --keep-temp). Results:
# tests/bench/results/latest.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# bench.py runs from --build DIR (default build/); build that directory.
build=build
plain_agent=0
args=()
for arg in "$@"; do
  if [ "$arg" = --plain-agent ]; then
    plain_agent=1
  else
    args+=("$arg")
  fi
done
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --build) build="${args[i + 1]:-build}" ;;
    --build=*) build="${args[i]#--build=}" ;;
  esac
done
targets=(spillway-agent spillway-mock-aoai spillway-bench-client spillway_alloc_counter)
jobs=$(nproc)
[ "$jobs" -le 2 ] || jobs=2
build_targets() {
  if [ "$build" = build ]; then
    deploy/build.sh --target "$@"
  else
    [ -f "$build/CMakeCache.txt" ] ||
      cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j"$jobs" --target "$@"
  fi
}
build_targets "${targets[@]}"
# The control-plane benchmark is optional here: without it bench.py reports that line as FAIL.
build_targets spillway-bench-controlplane ||
  echo "warning: spillway-bench-controlplane did not build; its targets will fail" >&2

# The Portkey gateway for the LLM-gateway rows (bench.py's PORTKEY_VERSION), from the npm
# registry into the build directory; without node and npm those rows are left out.
portkey_version=$(sed -n 's/^PORTKEY_VERSION = "\(.*\)"$/\1/p' tests/bench/bench.py)
portkey_dir="$build/bench-portkey"
portkey_package="$portkey_dir/node_modules/@portkey-ai/gateway/package.json"
if ! grep -qs "\"version\": \"$portkey_version\"" "$portkey_package"; then
  if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
    echo "installing @portkey-ai/gateway@$portkey_version into $portkey_dir"
    mkdir -p "$portkey_dir"
    npm install --prefix "$portkey_dir" --no-audit --no-fund --no-save --ignore-scripts \
      --loglevel=error "@portkey-ai/gateway@$portkey_version" >/dev/null ||
      echo "warning: Portkey did not install; its rows will be missing" >&2
  else
    echo "warning: node and npm are not installed; the Portkey rows will be missing" >&2
  fi
fi

# The agent measured is the profile-guided build (deploy/build-pgo.sh), as deployed; with
# --plain-agent, the build directory's own. Rebuilt only when the sources or the training changed.
agent_args=(--agent-build plain)
if [ "$plain_agent" = 0 ]; then
  pgo_dir="$build-pgo"
  if deploy/build-pgo.sh "$pgo_dir"; then
    agent_args=(--agent "$pgo_dir/dataplane/spillway-agent" --agent-build profile-guided)
  else
    echo "warning: the profile-guided build failed; measuring the plain agent" >&2
  fi
fi
exec python3 tests/bench/bench.py "${args[@]}" "${agent_args[@]}"
