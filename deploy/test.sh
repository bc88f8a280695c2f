#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test with ctest.
# Progress lines only; the install and build logs are in .logs/, ctest prints its results.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
deploy/build.sh
echo "testing ..."
cd build
ctest --output-on-failure --timeout 600 -j2 "$@"
