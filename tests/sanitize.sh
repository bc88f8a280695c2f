#!/usr/bin/env bash
# Builds the whole project with a sanitizer into build-<kind>/ and runs the suite there.
#   tests/sanitize.sh asan   AddressSanitizer + UndefinedBehaviorSanitizer, every test
#   tests/sanitize.sh ubsan  UndefinedBehaviorSanitizer alone, every test
#   tests/sanitize.sh tsan   ThreadSanitizer; the tests whose threads share state (the agent's
#                            and control plane's units and integration tests) unless more ctest
#                            arguments are given
# Any report fails the run (halt_on_error / -fno-sanitize-recover). Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:?usage: tests/sanitize.sh asan|ubsan|tsan [ctest args]}
shift
case "$KIND" in
  asan) FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" ;;
  ubsan) FLAGS="-fsanitize=undefined -fno-sanitize-recover=undefined" ;;
  # Debian's libprotobuf is not built with TSan, and protobuf's map_field.h gives MapFieldBase
  # two more members when __SANITIZE_THREAD__ is defined: our code and the library then
  # disagree on every map field's layout (the control plane crashed in MapFieldBase::Destruct).
  # The instrumentation comes from -fsanitize=thread, not the macro; _GLIBCXX_TSAN keeps the
  # shared_ptr code libstdc++ chooses for TSan.
  tsan) FLAGS="-fsanitize=thread -U__SANITIZE_THREAD__ -D_GLIBCXX_TSAN=1" ;;
  *) echo "sanitize: unknown kind '$KIND' (asan, ubsan, tsan)" >&2; exit 2 ;;
esac
deploy/install-deps.sh
DIR=build-$KIND
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
mkdir -p "$DIR"
echo "sanitize: building $DIR (log: $DIR/build.log) ..."
{
  # Configured every time, so a change to FLAGS reaches a build directory made before it.
  cmake -S . -B "$DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="$FLAGS -fno-omit-frame-pointer" -DSPILLWAY_SANITIZER="$KIND"
  cmake --build "$DIR" -j2
} >"$DIR/build.log" 2>&1 || { tail -n 30 "$DIR/build.log"; exit 1; }
# Child processes (agents, mocks, the control plane) inherit these and fail their test on a
# report. LeakSanitizer stays on: a leak at exit is a report too.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# TSan: tests/tsan.supp says, entry by entry, which uninstrumented Debian library each covers.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"
ARGS=("$@")
if [ "$KIND" = tsan ] && [ ${#ARGS[@]} -eq 0 ]; then
  ARGS=(-R "Agent|Tenant|Usage|Circuit|Socket|Entra|Fleet|Store|cp\.|usage\.|budget\.")
fi
echo "sanitize: testing ..."
cd "$DIR"
ctest --output-on-failure --timeout 900 -j2 "${ARGS[@]}"
