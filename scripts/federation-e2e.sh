#!/usr/bin/env bash
# End-to-end test of federation over the network (issue 4's must-show):
#   1. simulate a 5-client federation in process and export it (data, keys, TLS files, server config);
#   2. run `fedroute coordinator` and 5 `fedroute client` processes on 127.0.0.1 over HTTP/2 + TLS;
#   3. one client is SIGKILLed in the middle of an MLP round and restarted;
#      the server is SIGKILLed after a checkpoint and restarted (it resumes);
#   4. both routers' validation AUCs must match the in-process simulation within 0.01.
# Usage: scripts/federation-e2e.sh [FEDROUTE_BINARY] [WORK_DIR]
set -euo pipefail
B=${1:-.build/debug/fedroute}
W=${2:-$(mktemp -d)}
DATA=${FEDROUTE_E2E_DATA:-../shared/data/routerbench-3task}
# Extra `simulate` flags, e.g. FEDROUTE_E2E_SIMULATE_ARGS="--cluster-policy nested" (word-split).
read -r -a EXTRA <<< "${FEDROUTE_E2E_SIMULATE_ARGS:-}"
PORT=${FEDROUTE_E2E_PORT:-$((20000 + RANDOM % 20000))}
B=$(cd "$(dirname "$B")" && pwd)/$(basename "$B")
mkdir -p "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== simulate and export (5 clients, port $PORT) into $W"
# Best-round selection is off: the injected crash changes round 2, and which round validates best is
# a discrete choice that a changed round can flip (the rest of the validation path, K-Means' cluster
# count on the clients' held-out rows, runs over the network here; in-process tests cover selection).
"$B" simulate --data "$DATA" --seeds 0 --clients 5 --dimension 256 --hidden 128 --rounds 5 --no-select-best-round \
  --out "$W/sim" --export-federation "$W/fed" --export-port "$PORT" ${EXTRA[@]+"${EXTRA[@]}"} > "$W/simulate.log" 2>&1
F=$W/fed
cat "$F/expected.json"

start_server() { "$B" coordinator --config "$F/server.json" >> "$F/server.log" 2>&1 & SERVER=$!; PIDS+=("$SERVER"); }
start_client() {  # id, extra args
  local id=$1; shift
  local seed; seed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$F/personalize-seeds.json" "$id")
  # The rows the simulation's client held out for model selection and the safety gate.
  local held=(--validation-fraction 0)
  [ -f "$F/clients/$id-validation.jsonl" ] && held=(--validation "$F/clients/$id-validation.jsonl")
  "$B" client --server "https://127.0.0.1:$PORT" --data "$F/clients/$id.jsonl" "${held[@]}" --key "$F/keys/$id.key" --ca "$F/tls/ca.pem" \
    --give-up-after 120 --personalize "$F/personal/$id" --personalize-seed "$seed" --test "$F/clients/$id-test.jsonl" \
    "$@" >> "$F/$id.log" 2>&1 &
  PIDS+=("$!"); eval "PID_${id//-/_}=$!"
}
wait_for() {  # pattern file seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$1' in $2"; tail -30 "$2"; return 1
}

start_server
# Every client is armed; the first one to receive an MLP task of round ≥ 2 claims the marker and
# SIGKILLs itself before replying (mid-round). It is restarted unarmed.
for i in 0 1 2 3 4; do start_client "client-$i" --crash-in-round 2 --crash-marker "$F/crashed"; done
wait_for "client" "$F/crashed" 300
CRASHED=$(cat "$F/crashed")
sleep 0.5
echo "== $CRASHED was killed mid-round; restarting it"
start_client "$CRASHED"
# Kill the server right after a checkpoint of round 3, then restart it.
wait_for "round=3 .*checkpoint written" "$F/server.log" 300
kill -9 "$SERVER"; wait "$SERVER" 2>/dev/null || true
echo "== server killed after round 3; restarting it"
start_server
wait_for "resuming from checkpoint" "$F/server.log" 30
for _ in $(seq 1 3000); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
wait "$SERVER"
for i in 0 1 2 3 4; do
  for _ in $(seq 1 600); do [ -f "$F/personal/client-$i/personalization.json" ] && break; sleep 0.1; done
  [ -f "$F/personal/client-$i/personalization.json" ] || { echo "client-$i did not finish"; tail -20 "$F/client-$i.log"; exit 1; }
done

python3 - "$F" "$W/sim/seed-0/result.json" <<'PY'
import json, sys
f = sys.argv[1]
sim = json.load(open(sys.argv[2]))
expected = json.load(open(f + "/expected.json"))
summary = json.load(open(f + "/out/summary.json"))
got = summary["validationAUC"]
rounds = summary["rounds"]
print("rounds:", [(r["round"], r["aggregated"], sorted(r["rejected"])) for r in rounds])
print("restarts:", summary["restarts"])
bad = []
for fam, e in expected.items():
    g = got[fam]
    print(f"{fam}: network {g:.4f} vs simulation {e:.4f} (|Δ| = {abs(g - e):.4f})")
    if abs(g - e) > 0.01: bad.append(fam)
# Personalisation on each client's own test set, against the simulation's fine-tuned routers.
diffs = []
for fam in sim["families"]:
    for c in fam["clients"]:
        if not c.get("report"): continue
        e = next(x["auc"] for x in c["report"]["entries"] if x["name"] == "fine-tuned")
        g = json.load(open(f"{f}/personal/{c['client']}/personalization.json"))[fam["family"]]["fine-tuned"]
        diffs.append(abs(g - e))
        print(f"{fam['family']} {c['client']}: fine-tuned on its own test set, network {g:.4f} vs simulation {e:.4f}")
mean = sum(diffs) / len(diffs)
print(f"personalisation: mean |Δ| {mean:.4f} over {len(diffs)} (client, family) pairs")
if mean > 0.01: bad.append("personalisation")
assert summary["restarts"] >= 1, "the server was not restarted"
assert any(r["rejected"] for r in rounds), "no round lost a client, the kill did not land mid-round"
assert len(rounds) == 5 and [r["round"] for r in rounds] == [1, 2, 3, 4, 5], "rounds lost or repeated"
sys.exit(1 if bad else 0)
PY
echo "== federation end-to-end: OK"
