#!/usr/bin/env bash
# Seconds and bytes per FedAvg round: Flower 1.42 vs fedroute's own transport vs in process, the same
# federation (4 clients of routerbench-3task, every client every round, MLP only) in one sitting,
# REPEATS times each, interleaved. Bytes are request + response bodies on the wire (Flower: the
# nodes' train messages, objects included; fedroute: the coordinator's per-round traffic).
# Usage: scripts/flower-bench.sh [BUILD_DIR (release)] [WORK_DIR] [VENV_WITH_FLWR] [REPEATS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$ROOT/.build/release}" && pwd)
W=${2:-$(mktemp -d)}
VENV=${3:-$ROOT/.venv-flwr}
REPEATS=${4:-2}
DATA=${FEDROUTE_E2E_DATA:-$ROOT/../shared/data/routerbench-3task}
PORT=$((20000 + RANDOM % 20000)); FPORT=$((PORT + 1))
mkdir -p "$W"; W=$(cd "$W" && pwd)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
export PATH="$VENV/bin:$PATH" FLWR_HOME="$W/flwr-home" FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
mkdir -p "$FLWR_HOME"
printf '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "127.0.0.1:%s"\ninsecure = true\n' "$FPORT" > "$FLWR_HOME/config.toml"
wait_for() { for _ in $(seq 1 $(( $3 * 10 ))); do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done; echo "timed out: '$1' in $2"; tail -20 "$2"; return 1; }

"$BIN/fedroute" simulate --data "$DATA" --seeds 0 --clients 4 --rounds 5 --participation 1 --no-select-best-round --families mlp \
  --out "$W/sim" --export-federation "$W/fed" --export-port "$PORT" > "$W/simulate.log" 2>&1
F=$W/fed
flower-superlink --insecure --disable-runtime-dependency-installation --port "$FPORT" > "$W/superlink.log" 2>&1 &
PIDS+=("$!")
wait_for "Uvicorn running" "$W/superlink.log" 60
RESULTS=$W/results.jsonl; : > "$RESULTS"

for rep in $(seq 1 "$REPEATS"); do
  echo "== repeat $rep: in process"
  "$BIN/fedroute-bench" --only engines --federation "$F" | tee -a "$RESULTS"

  echo "== repeat $rep: fedroute's transport (HTTP/2 + TLS)"
  python3 - "$F/server.json" "$F/server-own.json" "$W/own-$rep" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["stateDirectory"] = sys.argv[3] + "/state"; c["outputDirectory"] = sys.argv[3] + "/out"
json.dump(c, open(sys.argv[2], "w"))
PY
  "$BIN/fedroute" coordinator --config "$F/server-own.json" > "$W/own-$rep.log" 2>&1 & SERVER=$!; PIDS+=("$SERVER")
  for i in 0 1 2 3; do
    "$BIN/fedroute" client --server "https://127.0.0.1:$PORT" --data "$F/clients/client-$i.jsonl" --validation "$F/clients/client-$i-validation.jsonl" \
      --key "$F/keys/client-$i.key" --ca "$F/tls/ca.pem" --give-up-after 120 >> "$W/own-client-$i.log" 2>&1 & PIDS+=("$!")
  done
  wait "$SERVER"
  python3 -c "
import json,sys; s=json.load(open(sys.argv[1])); t=s['traffic']; n=len(t)
print(json.dumps({'engine':'fedroute-http2','rounds':n,'seconds_per_round':sum(r['seconds'] for r in t)/n,'bytes_per_round':sum(r['bytesIn']+r['bytesOut'] for r in t)/n,'validation_auc':s['validationAUC']['mlp']}))" "$W/own-$rep/out/summary.json" | tee -a "$RESULTS"

  echo "== repeat $rep: Flower 1.42 (FedAvg)"
  python3 - "$F/server.json" "$F/server-flower.json" "$W/flower-$rep" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["stateDirectory"] = sys.argv[3] + "/state"; c["outputDirectory"] = sys.argv[3] + "/out"
json.dump(c, open(sys.argv[2], "w"))
PY
  NODES=()
  for i in 0 1 2 3; do
    "$BIN/fedroute" flower-node --superlink "http://127.0.0.1:$FPORT" --insecure --key "$F/keys/client-$i.flower.pem" --data "$F/clients/client-$i.jsonl" \
      --validation "$F/clients/client-$i-validation.jsonl" > "$W/flower-$rep-client-$i.log" 2>&1 & NODES+=("$!"); PIDS+=("$!")
  done
  flwr run "$ROOT/flower" local --stream --run-config "fedroute-binary='$BIN/fedroute' federation-config='$F/server-flower.json'" > "$W/flower-$rep.log" 2>&1
  for p in "${NODES[@]}"; do wait "$p"; done
  python3 - "$W/flower-$rep/out/summary.json" "$W"/flower-$rep-client-*.log <<'PY' | tee -a "$RESULTS"
import json, re, sys
s = json.load(open(sys.argv[1])); rounds = s["rounds"]["mlp"]; n = len(rounds)
total, busy = 0, []
for log in sys.argv[2:]:
    m = re.search(r": train: (\d+) messages, (\d+) bytes sent, (\d+) bytes received, ([0-9.]+) s", open(log).read())
    total += int(m.group(2)) + int(m.group(3))
    busy.append(float(m.group(4)) / n)
print(json.dumps({"engine": "flower", "rounds": n, "seconds_per_round": sum(r["seconds"] for r in rounds) / n, "bytes_per_round": total / n,
                  "node_seconds_per_round": max(busy),
                  "validation_auc": s["validationAUC"]["mlp"]}))
PY
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}
for r in rows: by.setdefault(r["engine"], []).append(r)
base = statistics.median(r["seconds_per_round"] for r in by["in-process"])
print("\n| engine | s / round (median of %d) | × in process | MB / round on the wire | validation AUC |" % len(by["in-process"]))
print("|---|---|---|---|---|")
for e in ["in-process", "fedroute-http2", "flower"]:
    rs = by[e]; s = statistics.median(r["seconds_per_round"] for r in rs)
    mb = statistics.median(r.get("bytes_per_round", 0) for r in rs) / 1e6
    each = ", ".join("%.2f" % r["seconds_per_round"] for r in rs)
    print("| %s | %.2f (%s) | %.2f | %.1f | %.4f |" % (e, s, each, s / base, mb, rs[0]["validation_auc"]))
busy = statistics.median(r["node_seconds_per_round"] for r in by["flower"])
print("\nFlower: the slowest node spends %.2f s per round from pulling the instruction to its reply's last object;" % busy)
print("the rest is outside the nodes: their 0.5 s poll for new messages, and the ServerApp pushing the instructions")
print("and pulling, inflating and averaging the replies in Python.")
PY
