#!/usr/bin/env bash
# The main job: installs what is missing, builds, then runs a small Spillway fleet on this
# machine -- mock Azure OpenAI backends, spillway-cp on a SQLite file, agents in eastus2,
# westus3 and swedencentral following it -- applies the demo topology in examples/
# with spillwayctl and walks through what the gateway does, ending with a traffic burst and a
# regional drill. --capacity adds PTU sizing: measure the traffic's shape, size the PTU from
# metered usage, resize it and check the spillover (about 4 minutes more). Everything listens
# on 127.0.0.1 on free ports and is stopped when the demo ends, unless --keep leaves it running.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=0
CAPACITY=0
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    --capacity) CAPACITY=1 ;;
    *) echo "usage: deploy/demo.sh [--keep] [--capacity]" >&2; exit 2 ;;
  esac
done
deploy/install-deps.sh
deploy/build.sh
echo "starting the fleet ..."
BIN=build
WORK=$(mktemp -d /tmp/spillway-demo.XXXXXX)
# `start` runs inside $(...), a subshell, so pids go to a file rather than a variable.
cleanup() {
  if [ -f "$WORK/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$WORK/pids"
    while read -r pid; do
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done <"$WORK/pids"
  fi
  rm -rf "$WORK"
}
[ "$KEEP" = 1 ] || trap cleanup EXIT

# Starts a process in the background, waits for its "listening on HOST:PORT" line and
# prints the port.
start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  echo $! >>"$WORK/pids"
  for _ in $(seq 1 100); do
    local port
    port=$(grep -m1 -o 'listening on [0-9.]*:[0-9]*' "$WORK/$name.log" 2>/dev/null | sed 's/.*://') || true
    if [ -n "${port:-}" ]; then echo "$port"; return 0; fi
    sleep 0.1
  done
  echo "demo: $name did not start:" >&2
  cat "$WORK/$name.log" >&2
  exit 1
}

export DEMO_BACKEND_KEY=backend-secret
MOCK=$BIN/tests/mock_aoai/spillway-mock-aoai
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Starting four mock Azure OpenAI backends"
# The PTU mock: one PTU serves 6,000 tokens a minute, enforced over 10-second windows. The
# control plane is told the same (--ptu-rates examples/demo-ptu-rates.json), so agents fill
# the PTU before they spill.
start_ptu() {
  start ptu "$MOCK" --listen "127.0.0.1:$1" --region eastus2 --api-keys backend-secret \
    --deployments "gpt-4o-ptu:model=gpt-4o:ptu=$2" --tokens-per-ptu-minute 6000 --window-seconds 10
}
PTU_PORT=$(start_ptu 0 1)
PTU_PID=$(tail -n 1 "$WORK/pids")
EUS2_PORT=$(start eus2 "$MOCK" --listen 127.0.0.1:0 --region eastus2 --api-keys backend-secret \
  --deployments "gpt-4o:model=gpt-4o:tpm=450000")
WUS3_PORT=$(start wus3 "$MOCK" --listen 127.0.0.1:0 --region westus3 --api-keys backend-secret \
  --deployments "gpt-4o:model=gpt-4o:tpm=450000")
SWC_PORT=$(start swc "$MOCK" --listen 127.0.0.1:0 --region swedencentral --api-keys backend-secret \
  --deployments "gpt-4o:model=gpt-4o:tpm=450000")
echo "PTU eastus2 :$PTU_PORT  Standard eastus2 :$EUS2_PORT  Standard westus3 :$WUS3_PORT  Standard swedencentral :$SWC_PORT"

sed -e "s/@PTU_PORT@/$PTU_PORT/" -e "s/@EUS2_PORT@/$EUS2_PORT/" -e "s/@WUS3_PORT@/$WUS3_PORT/" \
  -e "s/@SWC_PORT@/$SWC_PORT/" examples/demo-topology.yaml.in >"$WORK/topology.yaml"

say "Starting spillway-cp (control plane, SQLite at \$WORK/spillway.db)"
CP_PORT=$(start cp "$BIN/controlplane/spillway-cp" --listen 127.0.0.1:0 --db "$WORK/spillway.db" \
  --ptu-rates examples/demo-ptu-rates.json)
grep -m1 listening "$WORK/cp.log"
CTL=("$BIN/controlplane/cli/spillwayctl" --server "127.0.0.1:$CP_PORT")

say "spillwayctl apply -f topology.yaml --dry-run, then for real"
"${CTL[@]}" apply -f "$WORK/topology.yaml" --dry-run >"$WORK/dry-run"
head -n 12 "$WORK/dry-run"
"${CTL[@]}" apply -f "$WORK/topology.yaml" | tail -n 3

say "Starting three agents that follow the control plane"
agent() {
  mkdir -p "$WORK/agent-$1"
  start "agent-$1" "$BIN/dataplane/spillway-agent" --region "$2" --listen 127.0.0.1:0 \
    --control-plane "127.0.0.1:$CP_PORT" --state-dir "$WORK/agent-$1" \
    --access-log "$WORK/agent-$1/access.log" --usage-flush-ms 1000
}
AGENT_PORT=$(agent eus2 eastus2)
WUS3_AGENT_PORT=$(agent wus3 westus3)
SWC_AGENT_PORT=$(agent swc swedencentral)
AGENT=http://127.0.0.1:$AGENT_PORT
for _ in $(seq 1 100); do
  curl -sS "$AGENT/status" | grep -q '"version":1' && break
  sleep 0.1
done
"${CTL[@]}" agents

CHAT='{"messages":[{"role":"user","content":"Say hello to the platform team."}],"max_tokens":32}'
post() { curl -sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' -H 'content-type: application/json' "$@"; }
header() { grep -i "^$1:" "$WORK/headers" | tr -d '\r' | sed 's/^[^:]*: //'; }

say "1. A chat completion through the gateway, exactly as an SDK sends it"
code=$(post -H 'api-key: demo-key' -d "$CHAT" "$AGENT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
echo "HTTP $code from $(header x-spillway-backend) after $(header x-spillway-attempts) attempt(s)"
head -c 300 "$WORK/body"; echo

say "2. A streamed completion arrives chunk by chunk (SSE)"
curl -sS -N -H 'api-key: demo-key' -H 'content-type: application/json' \
  -d '{"messages":[{"role":"user","content":"Count to five."}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}' \
  "$AGENT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21" >"$WORK/stream"
head -c 700 "$WORK/stream"; echo

say "3. The PTU deployment fills up: requests spill over to Standard with no client error"
declare -A served=()
errors=0
for i in $(seq 1 30); do
  code=$(post -H 'api-key: demo-key' -d "$CHAT" "$AGENT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
  [ "$code" = 200 ] || errors=$((errors + 1))
  b=$(header x-spillway-backend); served[$b]=$(( ${served[$b]:-0} + 1 ))
done
for b in "${!served[@]}"; do echo "  ${served[$b]} request(s) served by $b"; done
echo "  client-visible errors: $errors"

say "4. A backend fails: its circuit opens and traffic moves on"
# A 503 with retry-after, as Azure's overloaded front ends send: the backend cannot have
# started the request, so the agent tries the next candidate.
curl -sS -X POST -d '{"mode":"status","status":503,"count":100,"retry_after_ms":5000}' "http://127.0.0.1:$EUS2_PORT/mock/faults" >/dev/null
for i in $(seq 1 6); do
  code=$(post -H 'api-key: demo-key' -d "$CHAT" "$AGENT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
  echo "  HTTP $code via $(header x-spillway-backend) (attempts: $(header x-spillway-attempts))"
done
curl -sS -X DELETE "http://127.0.0.1:$EUS2_PORT/mock/faults" >/dev/null
echo "  backend states:"; curl -sS "$AGENT/status" >"$WORK/status"; head -c 900 "$WORK/status"; echo

say "5. What clients get wrong is answered in Azure's error shape"
code=$(post -H 'api-key: wrong' -d "$CHAT" "$AGENT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"); echo "wrong key      -> $code $(cat "$WORK/body")"
code=$(post -H 'api-key: demo-key' -d "$CHAT" "$AGENT/openai/deployments/gpt-5/chat/completions?api-version=2024-10-21"); echo "unknown route  -> $code $(cat "$WORK/body")"
code=$(post -H 'api-key: demo-key' -d '{"messages":' "$AGENT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"); echo "broken JSON    -> $code $(cat "$WORK/body")"

say "6. The access log: one JSON line per request, no keys in it"
tail -n 3 "$WORK/agent-eus2/access.log"

say "7. A 429 seen by the westus3 agent steers the eastus2 agent away from that PTU too"
curl -sS -X POST -d '{"status":429,"count":1,"retry_after_ms":5000}' "http://127.0.0.1:$PTU_PORT/mock/faults" >/dev/null
code=$(post -H 'api-key: demo-key' -d "$CHAT" "http://127.0.0.1:$WUS3_AGENT_PORT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
echo "  westus3 agent: HTTP $code via $(header x-spillway-backend) (attempts: $(header x-spillway-attempts))"
sleep 0.3
"${CTL[@]}" health
for i in 1 2 3; do
  code=$(post -H 'api-key: demo-key' -d "$CHAT" "$AGENT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
  echo "  eastus2 agent: HTTP $code via $(header x-spillway-backend) (attempts: $(header x-spillway-attempts))"
done

say "8. Keys are minted by the control plane and reach every agent; the plaintext is shown once"
NEW_KEY=$("${CTL[@]}" keys create demo-app demo-2)
for _ in $(seq 1 50); do
  code=$(post -H "api-key: $NEW_KEY" -d "$CHAT" "$AGENT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
  [ "$code" = 200 ] && break
  sleep 0.1
done
echo "new key -> HTTP $code"
"${CTL[@]}" get tenants

say "9. The swedencentral agent holds only its stamp's table: a us tenant's key means nothing there"
code=$(post -H 'api-key: demo-key' -d "$CHAT" "http://127.0.0.1:$SWC_AGENT_PORT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
echo "us tenant in the eu stamp -> $code $(cat "$WORK/body")"

say "10. A burst from three tenants, streamed and not, more than the PTU can take"
sleep 10  # the PTU's 10-second window refills (and its 429 from step 7 passes)
# spillwayctl load: 150 requests in a second from three tenants' keys (critical, standard,
# batch), 30% streamed; the report says who served them and what clients saw.
LOAD_BIN="$BIN/controlplane/cli/spillwayctl"
TENANTS=(--api-key demo-app=demo-key --api-key support-bot=support-key
  --api-key batch-jobs=batch-key --route gpt-4o)
"$LOAD_BIN" load --target "$AGENT" "${TENANTS[@]}" --rpm 9000 --duration 1s --concurrency 12 \
  --prompt-tokens 20-60 --completion-tokens 16 --stream-share 0.3 >"$WORK/burst.txt"
sed -n '4,5p;/^backends/p;/^errors/p;/^TENANT/,/^$/p' "$WORK/burst.txt" | sed 's/^/  /'
sleep 2.5  # the agents flush usage every second
echo "  usage per tenant and deployment, from the control plane (spillwayctl usage):"
"${CTL[@]}" usage --since 10m --by tenant,deployment | sed 's/^/  /'

say "11. A 20-second drill: eastus2 goes out while traffic flows, and comes back"
"${CTL[@]}" drill region eastus2 --duration 20s --dry-run
"$LOAD_BIN" load --target "$AGENT" "${TENANTS[@]}" --rpm 2400 --duration 27s \
  --completion-tokens 16 -o json >/dev/null &
BACKGROUND=$!
"$LOAD_BIN" load --target "http://127.0.0.1:$WUS3_AGENT_PORT" "${TENANTS[@]}" --rpm 1200 \
  --duration 27s --completion-tokens 16 -o json >/dev/null &
BACKGROUND2=$!
sleep 1
"${CTL[@]}" drill region eastus2 --duration 20s
wait "$BACKGROUND" "$BACKGROUND2"
"${CTL[@]}" drills

[ "$CAPACITY" = 1 ] && . deploy/lib/capacity-steps.sh

if [ "$KEEP" = 1 ]; then
  say "Still running (--keep); stop it all with: kill \$(cat $WORK/pids)"
  cat <<EOF
agent (eastus2): $AGENT    control plane: 127.0.0.1:$CP_PORT
  curl -sS -H 'api-key: demo-key' -H 'content-type: application/json' \\
    -d '{"messages":[{"role":"user","content":"Hello"}]}' \\
    '$AGENT/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21'
  # Python, the official SDK:
  from openai import AzureOpenAI
  client = AzureOpenAI(azure_endpoint="$AGENT", api_key="demo-key", api_version="2024-10-21")
  print(client.chat.completions.create(model="gpt-4o",
        messages=[{"role": "user", "content": "Hello"}]).choices[0].message.content)
  # spillwayctl: ${CTL[*]} agents | health | usage | drills
EOF
  exit 0
fi
say "Done."
