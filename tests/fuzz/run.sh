#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, AddressSanitizer and UndefinedBehaviorSanitizer into
# build-fuzz/ and runs each for SECONDS (default 60) from the committed seed corpus. A crash
# leaves its input in build-fuzz/crashes/ and fails the run: make it a regression test.
#   tests/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-60}
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ -n "${missing[*]:-}" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
TARGETS=(api_path request_facts sse_usage relay_response_parser topology multipart_field
  ptu_rates csv_line plain_head)
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
mkdir -p build-fuzz
echo "fuzz: building (log: build-fuzz/build.log) ..."
{
  [ -f build-fuzz/CMakeCache.txt ] || cmake -S . -B build-fuzz -DSPILLWAY_FUZZ=ON \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
  cmake --build build-fuzz -j2 --target "${TARGETS[@]/#/fuzz_}"
} >build-fuzz/build.log 2>&1 || { tail -n 30 build-fuzz/build.log; exit 1; }
mkdir -p build-fuzz/crashes
failed=0
for t in "${TARGETS[@]}"; do
  work=$(mktemp -d)
  if build-fuzz/tests/fuzz/fuzz_$t -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build-fuzz/crashes/$t- \
      "$work" tests/fuzz/corpus/$t >build-fuzz/$t.log 2>&1; then
    runs=$(grep -m1 'stat::number_of_executed_units' build-fuzz/$t.log | awk '{print $2}')
    echo "fuzz: $t clean: ${runs:-?} runs in ${SECONDS_EACH}s"
  else
    echo "fuzz: $t FAILED (log: build-fuzz/$t.log; input in build-fuzz/crashes/)"
    grep -m5 -E 'ERROR|SUMMARY|runtime error' build-fuzz/$t.log || true
    failed=1
  fi
  rm -rf "$work"
done
exit $failed
