# shellcheck shell=bash
# Sourced by run_sdk_test.sh and run_vercel_ai_test.sh: runs a command in a process group of its
# own that dies with the script. The group (the command and whatever it spawned) is killed when
# the script exits and on TERM, INT and HUP (a ctest timeout); a SIGKILLed script runs no trap,
# so the command also gets --pdeathsig, and the node tests start their children the same way
# (process_guard.mjs).

# run_in_own_group COMMAND [ARGS...]: returns the command's exit status.
run_in_own_group() {
  # A background job of a non-interactive shell is not a group leader, so setsid makes the new
  # session in place and $! is the group's id; --wait keeps the status right if it had to fork.
  setsid --wait setpriv --pdeathsig KILL -- "$@" &
  spillway_group=$!
  trap 'kill -KILL -- "-$spillway_group" 2>/dev/null || true' EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  trap 'exit 129' HUP
  local status=0
  wait "$spillway_group" || status=$?
  return "$status"
}
