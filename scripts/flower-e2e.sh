#!/usr/bin/env bash
# End-to-end test of fedroute on Flower 1.42 (issue 17's must-show):
#   1. simulate a federation in process (4 clients of routerbench-3task, every client in every round)
#      and export it;
#   2. start a Flower SuperLink on 127.0.0.1 and 4 `fedroute flower-node` processes;
#   3. `flwr run flower/` runs the ServerApp to completion: fedroute's setup, MLP and MF rounds with
#      Flower's FedAvg, the two-pass k-means; every router's validation AUC must match the simulation's
#      within 0.005, and every node must have received the routers;
#   4. a second run (MLP): one node is SIGKILLed in the middle of a round and restarted; the run
#      finishes, the round reports the node's failure, the AUC stays within 0.01;
#   5. a second, short run over TLS with node authentication (--enable-supernode-auth; an unenrolled key is
#      refused) puts Flower's FedProx inside its server-side DP wrapper (fixed clipping).
# Usage: scripts/flower-e2e.sh [FEDROUTE_BINARY] [WORK_DIR] [VENV_WITH_FLWR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-.build/debug/fedroute}
W=${2:-$(mktemp -d)}
VENV=${3:-$ROOT/.venv-flwr}
DATA=${FEDROUTE_E2E_DATA:-$ROOT/../shared/data/routerbench-3task}
PORT=${FLOWER_E2E_PORT:-$((20000 + RANDOM % 20000))}
B=$(cd "$(dirname "$B")" && pwd)/$(basename "$B")
mkdir -p "$W"
W=$(cd "$W" && pwd)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done; pkill -9 -f "flower-superexec.*$PORT" 2>/dev/null || true; }
trap cleanup EXIT
export PATH="$VENV/bin:$PATH" FLWR_HOME="$W/flwr-home" FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
mkdir -p "$FLWR_HOME"
printf '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "127.0.0.1:%s"\ninsecure = true\n' "$PORT" > "$FLWR_HOME/config.toml"

wait_for() {  # pattern file seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$1' in $2"; tail -30 "$2"; return 1
}

echo "== simulate and export (4 clients) into $W"
"$B" simulate --data "$DATA" --seeds 0 --clients 4 --dimension 256 --hidden 128 --rounds 4 --participation 1 --no-select-best-round \
  --families mlp kmeans mf --out "$W/sim" --export-federation "$W/fed" --export-port "$PORT" > "$W/simulate.log" 2>&1
F=$W/fed
cat "$F/expected.json"; echo

echo "== SuperLink on 127.0.0.1:$PORT"
flower-superlink --insecure --disable-runtime-dependency-installation --port "$PORT" > "$W/superlink.log" 2>&1 &
PIDS+=("$!")
wait_for "Uvicorn running" "$W/superlink.log" 60

start_node() {  # id, extra args
  local id=$1; shift
  local held=(--validation-fraction 0)
  [ -f "$F/clients/$id-validation.jsonl" ] && held=(--validation "$F/clients/$id-validation.jsonl")
  "$B" flower-node --superlink "http://127.0.0.1:$PORT" --insecure --key "$F/keys/$id.flower.pem" --data "$F/clients/$id.jsonl" "${held[@]}" \
    --personalize "$F/personal/$id" --test "$F/clients/$id-test.jsonl" --give-up-after 120 "$@" >> "$F/$id.flower.log" 2>&1 &
  PIDS+=("$!")
}
run_app() {  # federation config, log
  flwr run "$ROOT/flower" local --stream --run-config "fedroute-binary='$B' federation-config='$1' round-timeout=30.0" > "$2" 2>&1 &
  APP=$!; PIDS+=("$APP")
}
wait_for_routers() {  # every node received the routers and personalised them
  for i in 0 1 2 3; do
    for _ in $(seq 1 900); do [ -f "$F/personal/client-$i/personalization.json" ] && break; sleep 0.1; done
    [ -f "$F/personal/client-$i/personalization.json" ] || { echo "client-$i did not finish"; tail -20 "$F/client-$i.flower.log"; exit 1; }
  done
}

echo "== run 1, no faults: MLP, K-Means and MF must match the simulation within 0.005"
for i in 0 1 2 3; do start_node "client-$i"; done
SECONDS=0
run_app "$F/server.json" "$W/run.log"
wait "$APP"
echo "== ServerApp finished in ${SECONDS}s"
wait_for_routers
"$VENV/bin/python" - "$F" <<'PY'
import json, sys
f = sys.argv[1]
expected = json.load(open(f + "/expected.json"))
summary = json.load(open(f + "/out/summary.json"))
bad = []
for fam, e in sorted(expected.items()):
    g = summary["validationAUC"][fam]
    print(f"{fam}: Flower {g:.4f}  simulation {e:.4f}  |Δ| {abs(g - e):.4f}")
    if abs(g - e) > 0.005: bad.append(fam)
for r in summary["rounds"]["mlp"]:
    print(f"round {r['round']}: {r['seconds']:.2f} s, aggregated {sorted(r['aggregated'])}, failures {r['failures']}")
    if r["failures"]: bad.append(f"round {r['round']} failed without a fault")
if bad: sys.exit(f"FAILED: {bad}")
PY

echo "== run 2, MLP only: a node SIGKILLed mid-round and restarted"
# Every node is armed; the first to receive a train message of round ≥ 2 claims the marker and
# SIGKILLs itself before replying. It is restarted unarmed with the same key. Which node that is
# varies, and the lost update moves the AUC (0.8211–0.8249 against 0.8209 seen): the bound is 0.01.
python3 - "$F/server.json" "$F/server-fault.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["families"] = ["mlp"]; c["outputDirectory"] = c["outputDirectory"] + "-fault"
json.dump(c, open(sys.argv[2], "w"))
PY
for i in 0 1 2 3; do rm -rf "$F/personal/client-$i"; start_node "client-$i" --crash-in-round 2 --crash-marker "$F/crashed"; done
run_app "$F/server-fault.json" "$W/run-fault.log"
wait_for "client" "$F/crashed" 600
CRASHED=$(cat "$F/crashed")
sleep 1
echo "== $CRASHED was killed mid-round; restarting it"
start_node "$CRASHED"
wait "$APP"
wait_for_routers
"$VENV/bin/python" - "$F" "$CRASHED" <<'PY'
import json, sys
f, crashed = sys.argv[1], sys.argv[2]
expected = json.load(open(f + "/expected.json"))["mlp"]
summary = json.load(open(f + "/out-fault/summary.json"))
g = summary["validationAUC"]["mlp"]
print(f"mlp with a fault: Flower {g:.4f}  simulation {expected:.4f}  |Δ| {abs(g - expected):.4f}")
bad = [] if abs(g - expected) <= 0.01 else ["mlp"]
rounds = summary["rounds"]["mlp"]
for r in rounds:
    print(f"round {r['round']}: {r['seconds']:.2f} s, aggregated {sorted(r['aggregated'])}, failures {r['failures']}")
failed = [r["round"] for r in rounds if crashed in r["failures"]]
if not failed: bad.append(f"no round reports {crashed}'s failure")
if len(rounds) != json.load(open(f + "/server.json"))["mlp"]["rounds"]: bad.append("rounds missing")
if bad: sys.exit(f"FAILED: {bad}")
print(f"{crashed} failed in round(s) {failed} and the run finished")
PY

echo "== over TLS with node authentication: Flower's FedProx inside its server-side DP wrapper (fixed clipping), 2 MLP rounds"
SPORT=$((PORT + 1))
flower-superlink --ssl-certfile "$F/tls/server.pem" --ssl-keyfile "$F/tls/server-key.pem" --ssl-ca-certfile "$F/tls/ca.pem" \
  --enable-supernode-auth --disable-runtime-dependency-installation --port "$SPORT" > "$W/superlink-tls.log" 2>&1 &
PIDS+=("$!")
wait_for "Uvicorn running on https" "$W/superlink-tls.log" 60
printf '\n[superlink.secure]\naddress = "127.0.0.1:%s"\nroot-certificates = "%s"\n' "$SPORT" "$F/tls/ca.pem" >> "$FLWR_HOME/config.toml"
python3 - "$F/server.json" "$F/server-dp.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["families"] = ["mlp"]; c["mlp"]["rounds"] = 2; c["outputDirectory"] = c["outputDirectory"] + "-dp"
json.dump(c, open(sys.argv[2], "w"))
PY
# An unenrolled key is refused; enrolled keys (OpenSSH form, as `flwr supernode register` reads them) get in.
if "$B" flower-node --superlink "https://127.0.0.1:$SPORT" --root-certificates "$F/tls/ca.pem" --key "$W/stranger.pem" --id stranger \
     --data "$F/clients/client-0.jsonl" --validation-fraction 0 --give-up-after 3 > "$W/stranger.log" 2>&1; then
  echo "an unenrolled node was let in"; exit 1
fi
grep -q "activate-node: HTTP 412" "$W/stranger.log" || { echo "the unenrolled node failed for another reason"; tail -5 "$W/stranger.log"; exit 1; }
NODES=()
for i in 0 1 2 3; do
  "$B" flower-key --key "$F/keys/client-$i.auth.pem" > "$F/keys/client-$i.auth.pub"
  flwr supernode register "$F/keys/client-$i.auth.pub" secure > /dev/null
  "$B" flower-node --superlink "https://127.0.0.1:$SPORT" --root-certificates "$F/tls/ca.pem" --key "$F/keys/client-$i.auth.pem" \
    --data "$F/clients/client-$i.jsonl" --validation-fraction 0 --give-up-after 120 > "$F/client-$i.auth.log" 2>&1 &
  NODES+=("$!"); PIDS+=("$!")
done
flwr run "$ROOT/flower" secure --stream --run-config "fedroute-binary='$B' federation-config='$F/server-dp.json' round-timeout=30.0 strategy='fedprox' dp-noise-multiplier=0.1 dp-clipping-norm=5.0" > "$W/run-dp.log" 2>&1
grep -q "central DP noise with" "$W/run-dp.log" || { echo "no DP wrapper in the log"; tail -30 "$W/run-dp.log"; exit 1; }
for p in "${NODES[@]}"; do wait "$p"; done
python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print('TLS + node auth + FedProx + DP: MLP validation AUC %.4f over %d rounds' % (s['validationAUC']['mlp'], len(s['rounds']['mlp'])))" "$F/out-dp/summary.json"
echo "flower e2e passed"
