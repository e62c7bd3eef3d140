#!/usr/bin/env bash
# A federation over a simulated wide-area link: `fedroute coordinator` and 5 `fedroute client`
# processes on 127.0.0.1 over TLS (the clients' default HTTP/1.1 unless told otherwise), the clients reaching the coordinator through
# scripts/delay-proxy.py (a fixed one-way delay each way, bandwidth unlimited). Prints the MLP rounds'
# seconds from the coordinator's log: what the link's round trips cost a round.
# Usage: scripts/federation-wan.sh [FEDROUTE_BINARY] [ONE_WAY_DELAY_MS] [WORK_DIR]
# FEDROUTE_WAN_CLIENT_ARGS passes extra `fedroute client` flags, e.g. "--http-version auto" (HTTP/2).
set -euo pipefail
B=${1:-.build/release/fedroute}
DELAY=${2:-10}
W=${3:-$(mktemp -d)}
DATA=${FEDROUTE_E2E_DATA:-../shared/data/routerbench-3task}
read -r -a EXTRA <<< "${FEDROUTE_WAN_CLIENT_ARGS:-}"
PORT=$((20000 + RANDOM % 20000)); PROXY=$((PORT + 1))
B=$(cd "$(dirname "$B")" && pwd)/$(basename "$B")
HERE=$(cd "$(dirname "$0")" && pwd)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
mkdir -p "$W"
"$B" simulate --data "$DATA" --seeds 0 --clients 5 --families mlp --rounds 5 --no-select-best-round \
  --out "$W/sim" --export-federation "$W/fed" --export-port "$PORT" > "$W/simulate.log" 2>&1
F=$W/fed
python3 "$HERE/delay-proxy.py" --listen "$PROXY" --target "$PORT" --delay-ms "$DELAY" & PIDS+=("$!")
"$B" coordinator --config "$F/server.json" > "$F/server.log" 2>&1 & SERVER=$!; PIDS+=("$SERVER")
for i in 0 1 2 3 4; do
  "$B" client --server "https://127.0.0.1:$PROXY" --data "$F/clients/client-$i.jsonl" --validation-fraction 0 --key "$F/keys/client-$i.key" \
    --ca "$F/tls/ca.pem" --give-up-after 120 ${EXTRA[@]+"${EXTRA[@]}"} > "$F/client-$i.log" 2>&1 & PIDS+=("$!")
done
wait "$SERVER"
grep "checkpoint written" "$F/server.log" | grep -o 'seconds=[0-9.]*' | cut -d= -f2 | tr '\n' ' '
echo "(MLP round seconds, one-way delay $DELAY ms, $(basename "$B") ${EXTRA[*]:-})"
