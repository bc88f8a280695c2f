#!/usr/bin/env bash
# Installs the pinned `openai` and `ws` npm packages into the build tree (once) and runs the SDK
# test.
# Usage: run_sdk_test.sh WORK_DIR ; SPILLWAY_MOCK_AOAI_BIN and SPILLWAY_AGENT_BIN set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$1
mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/sdk.test.mjs" "$work/"
cd "$work"
if [ ! -d node_modules/openai ] || [ ! -d node_modules/ws ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
exec node --test --test-reporter=spec sdk.test.mjs
