#!/usr/bin/env bash
# Installs the pinned Vercel AI SDK packages (`ai`, `@ai-sdk/azure`) into the build tree (once
# per lock file) and runs the multi-turn conversation test in a process group that dies with
# this script (../sdk/process_group.sh), so a crash or a ctest timeout leaves nothing behind.
# Usage: run_vercel_ai_test.sh WORK_DIR ; SPILLWAY_MOCK_AOAI_BIN, SPILLWAY_AGENT_BIN,
# SPILLWAY_CP_BIN and SPILLWAYCTL_BIN set. SPILLWAY_VERCEL_ONE_AGENT=1 sends every turn to
# one agent (a debugging aid, see multi_turn.test.mjs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$1
mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/multi_turn.test.mjs" \
  "$here/../sdk/process_guard.mjs" "$work/"
cd "$work"
# Installs again when the lock file differs from the one last installed, saved beside the
# packages: a version bump reaches an existing build tree.
if ! cmp -s package-lock.json node_modules/.package-lock.json.installed 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json node_modules/.package-lock.json.installed
fi
# shellcheck source=SCRIPTDIR/../sdk/process_group.sh
source "$here/../sdk/process_group.sh"
# The file itself, not `node --test`: that runs it in a further node process, which would
# outlive a killed runner (and keep its children alive) until its tests ended.
run_in_own_group node --test-reporter=spec multi_turn.test.mjs
