# shellcheck shell=bash
# Sourced by deploy/demo.sh --capacity: measure the traffic's shape, size the PTU from metered
# usage, resize it and check the spillover (docs/capacity.md). Usage is metered per minute, so
# each measurement is one whole minute of load, and capacity reads that minute once it is over.
LOAD=("$BIN/controlplane/cli/spillwayctl" load --target "$AGENT" --api-key demo-key
  --route gpt-4o --rpm 60 --duration 59s --prompt-tokens 100-400 --completion-tokens 16
  --stream-share 0.3)
CAPACITY_CMD=("${CTL[@]}" capacity --since 1m --route us/gpt-4o --rates examples/demo-ptu-rates.json)

# One minute of the shape, from the start of a minute; then that minute's capacity report.
measure() {
  sleep $((60 - 10#$(date +%S)))
  "${LOAD[@]}" >"$WORK/load.txt"
  sed -n '4,5p;7,10p;/^tokens/p;/^backends/p' "$WORK/load.txt" | sed 's/^/  /'
  sleep $((62 - 10#$(date +%S)))  # the minute is over and the agents have flushed it
  "${CAPACITY_CMD[@]}" | sed 's/^/  /'
}

say "12. Measure the shape: a minute of 60 requests/min, prompts of 100-400 tokens, 30% streamed"
echo "  (waiting for the next minute to start: usage is metered per minute)"
measure

say "13. Size the PTU from what the fleet metered, resize it, and check the spillover"
PTUS=$("${CAPACITY_CMD[@]}" -o json | python3 -c \
  'import json,sys; print(json.load(sys.stdin)["routes"][0]["recommended_ptu"])')
echo "  capacity recommends $PTUS PTU: restarting the PTU mock with $PTUS and telling the fleet"
kill "$PTU_PID"
while kill -0 "$PTU_PID" 2>/dev/null; do sleep 0.1; done
start_ptu "$PTU_PORT" "$PTUS" >/dev/null
PTU_PID=$(tail -n 1 "$WORK/pids")
sed -i "s/sku: ProvisionedManaged, capacity: [0-9]*/sku: ProvisionedManaged, capacity: $PTUS/" \
  "$WORK/topology.yaml"
"${CTL[@]}" apply -f "$WORK/topology.yaml" | tail -n 1 | sed 's/^/  /'
measure
echo "  ON_PTU is what the PTU served; SPILL is what the minute-level model predicts. A PTU is"
echo "  enforced over seconds, not minutes, so one sized to the busiest minute still spills in"
echo "  the seconds it is full: leave headroom (a higher percentile, or the next increment)."
