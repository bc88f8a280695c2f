# Sourced by deploy/*.sh: one progress line per phase, the tools' own output kept in a log
# file under .logs/, and that file's path and last lines printed only when a phase fails.

LOG_DIR="${SPILLWAY_LOG_DIR:-$PWD/.logs}"
mkdir -p "$LOG_DIR"

# step NAME LOG COMMAND...: runs COMMAND with its output in $LOG_DIR/LOG.
step() {
  local name=$1 log="$LOG_DIR/$2"
  shift 2
  echo "$name ..."
  if ! "$@" >"$log" 2>&1; then
    echo "$name failed; the last lines of $log:" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
}

# build_step LOG COMMAND...: like step, printing "building N%" as the build passes each tenth.
build_step() {
  local log="$LOG_DIR/$1"
  shift
  echo "building ..."
  local shown=0 status
  set +e
  "$@" 2>&1 | tee "$log" | while IFS= read -r line; do
    if [[ $line =~ ^\[\ *([0-9]+)%\] ]]; then
      local pct=${BASH_REMATCH[1]}
      if ((pct / 10 > shown / 10)); then
        shown=$pct
        echo "building ${pct}%"
      fi
    fi
  done
  status=${PIPESTATUS[0]}
  set -e
  if ((status != 0)); then
    echo "building failed; the last lines of $log:" >&2
    grep -E "error|Error" "$log" | head -n 20 >&2 || true
    tail -n 20 "$log" >&2
    return 1
  fi
  echo "built (log: $log)"
}
