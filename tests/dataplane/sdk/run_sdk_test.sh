#!/usr/bin/env bash
# Installs the pinned `openai` and `ws` npm packages into the build tree (once) and runs the SDK
# test in a process group that dies with this script (process_group.sh), so a crash or a ctest
# timeout leaves no agent or mock behind.
# Usage: run_sdk_test.sh WORK_DIR ; SPILLWAY_MOCK_AOAI_BIN and SPILLWAY_AGENT_BIN set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$1
mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/sdk.test.mjs" "$here/process_guard.mjs" \
  "$work/"
cd "$work"
if [ ! -d node_modules/openai ] || [ ! -d node_modules/ws ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
# shellcheck source=SCRIPTDIR/process_group.sh
source "$here/process_group.sh"
# The file itself, not `node --test`: that runs it in a further node process, which would
# outlive a killed runner (and keep its children alive) until its tests ended.
run_in_own_group node --test-reporter=spec sdk.test.mjs
