#!/usr/bin/env python3
"""fedroute against PyTorch on the same MLP-Router training, interleaved in one sitting.

    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch numpy
    swift build -c release --product fedroute-bench
    .venv-torch/bin/python scripts/bench-compare.py [--runs 5] [--rows 8192] [--epochs 3]

Each run starts `fedroute-bench --only mlp-train` and then this script's PyTorch twin (in a fresh
process, alternating which goes first), so both sides see the same machine state. The PyTorch model is
the MLP-Router's architecture with the two heads fused into one Linear (the faster form): Linear(1024,
512) → LayerNorm → exact GELU → Dropout(0.1), twice, then Linear(512, 2·11); the loss is fedroute's
masked MSE(sigmoid(logit), score) + SmoothL1(cost) over observed cells; AdamW (lr 1e-3, weight decay
3e-4 on Linear weights), gradient clipping at norm 1, batch 128, one observed model per query, one
warm-up epoch, torch.set_num_threads(2), eager mode. Prints samples/s per run, best and median of each
side, and fedroute / PyTorch.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def torch_run(rows, epochs, threads):
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    models, inputs, hidden = 11, 1024, 512
    g = torch.Generator().manual_seed(3)
    x = torch.rand(rows, inputs, generator=g) - 0.5
    observed = torch.randint(0, models, (rows,), generator=g)
    mask = torch.zeros(rows, models)
    mask[torch.arange(rows), observed] = 1
    score = torch.randint(0, 2, (rows, models), generator=g).float() * mask
    cost = torch.randn(rows, models, generator=g) * mask

    def block(i, o):
        return [torch.nn.Linear(i, o), torch.nn.LayerNorm(o), torch.nn.GELU(), torch.nn.Dropout(0.1)]

    net = torch.nn.Sequential(*block(inputs, hidden), *block(hidden, hidden), torch.nn.Linear(hidden, 2 * models))
    decay = [p for n, p in net.named_parameters() if n.endswith("weight") and p.dim() == 2]
    rest = [p for n, p in net.named_parameters() if not (n.endswith("weight") and p.dim() == 2)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 3e-4}, {"params": rest, "weight_decay": 0}], lr=1e-3)
    smooth = torch.nn.SmoothL1Loss(reduction="none")

    def epoch():
        order = torch.randperm(rows)
        for start in range(0, rows, 128):
            idx = order[start:start + 128]
            out = net(x[idx])
            logits, c = out[:, :models], out[:, models:]
            m = mask[idx]
            count = m.sum().clamp(min=1)
            loss = (((torch.sigmoid(logits) - score[idx]) ** 2 + smooth(c, cost[idx])) * m).sum() / count
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()

    net.train()
    epoch()
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    seconds = time.perf_counter() - start
    return {"engine": "pytorch", "torch": torch.__version__, "threads": threads, "rows": rows, "epochs": epochs,
            "samples_per_second": rows * epochs / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bench", default=".build/release/fedroute-bench")
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_only:
        print(json.dumps(torch_run(args.rows, args.epochs, args.threads)))
        return
    if not os.path.exists(args.bench):
        sys.exit(f"{args.bench} not found: swift build -c release --product fedroute-bench")
    fedroute_cmd = [args.bench, "--only", "mlp-train", "--rows", str(args.rows), "--epochs", str(args.epochs)]
    torch_cmd = [sys.executable, __file__, "--torch-only", "--rows", str(args.rows), "--epochs", str(args.epochs),
                 "--threads", str(args.threads)]
    results = {"fedroute": [], "pytorch": []}
    for run in range(args.runs):
        order = [("fedroute", fedroute_cmd), ("pytorch", torch_cmd)]
        if run % 2:
            order.reverse()
        for name, cmd in order:
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            value = json.loads(line)["samples_per_second"]
            results[name].append(value)
            print(f"run {run + 1}  {name:8s} {value:9.0f} samples/s", flush=True)
    f, t = results["fedroute"], results["pytorch"]
    print(f"\nMLP-Router training, {args.rows} rows × {args.epochs} epochs, batch 128 (samples/s, best / median of {args.runs})")
    print(f"  fedroute  {max(f):9.0f} / {statistics.median(f):9.0f}")
    print(f"  PyTorch   {max(t):9.0f} / {statistics.median(t):9.0f}   ({args.threads} threads, eager, heads fused)")
    print(f"  fedroute / PyTorch: best {max(f) / max(t):.2f}, median {statistics.median(f) / statistics.median(t):.2f}")


if __name__ == "__main__":
    main()
