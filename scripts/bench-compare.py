#!/usr/bin/env python3
"""fedroute against PyTorch (and ONNX Runtime) on the same work, interleaved in one sitting.

    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch numpy onnxruntime onnx
    swift build -c release --product fedroute-bench && scripts/fetch-minilm.sh
    .venv-torch/bin/python scripts/bench-compare.py [--runs 5] [--rows 8192] [--epochs 3] [--only mlp|minilm]

MiniLM: `fedroute-bench --only minilm-speed` against the same all-MiniLM-L6-v2 weights
(.fedroute-models/all-MiniLM-L6-v2/model.safetensors) run as a plain PyTorch BERT (inference mode,
2 threads) and, exported from it with torch.onnx, by ONNX Runtime (2 intra-op threads); batches of 64
sequences of exactly 15 and 256 token ids, mean pooling and L2 normalisation included.

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


def load_safetensors(path):
    import numpy as np
    import torch
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            continue  # position_ids (I64) are not weights
        a, b = info["data_offsets"]
        out[name.removeprefix("bert.")] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).reshape(info["shape"]).copy())
    return out


def minilm_module(weights):
    import torch
    F = torch.nn.functional

    class MiniLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.ParameterDict({k.replace(".", "_"): torch.nn.Parameter(v, requires_grad=False) for k, v in weights.items()})

        def p(self, name):
            return self.w[name.replace(".", "_")]

        def forward(self, ids):
            n = ids.shape[1]
            x = self.p("embeddings.word_embeddings.weight")[ids] + self.p("embeddings.position_embeddings.weight")[:n] \
                + self.p("embeddings.token_type_embeddings.weight")[0]
            x = F.layer_norm(x, (384,), self.p("embeddings.LayerNorm.weight"), self.p("embeddings.LayerNorm.bias"), 1e-12)
            b = ids.shape[0]
            for l in range(6):
                q = f"encoder.layer.{l}."
                def lin(t, name):
                    return F.linear(t, self.p(q + name + ".weight"), self.p(q + name + ".bias"))
                def heads(t):
                    return t.view(b, n, 12, 32).transpose(1, 2)
                qh, kh, vh = heads(lin(x, "attention.self.query")), heads(lin(x, "attention.self.key")), heads(lin(x, "attention.self.value"))
                ctx = F.scaled_dot_product_attention(qh, kh, vh).transpose(1, 2).reshape(b, n, 384)
                x = F.layer_norm(lin(ctx, "attention.output.dense") + x, (384,), self.p(q + "attention.output.LayerNorm.weight"),
                                 self.p(q + "attention.output.LayerNorm.bias"), 1e-12)
                h = F.gelu(lin(x, "intermediate.dense"))
                x = F.layer_norm(lin(h, "output.dense") + x, (384,), self.p(q + "output.LayerNorm.weight"),
                                 self.p(q + "output.LayerNorm.bias"), 1e-12)
            return F.normalize(x.mean(dim=1), dim=1)

    return MiniLM().eval()


def minilm_run(engine, tokens, queries, threads, model_path):
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    g = np.random.default_rng(5)
    ids = np.concatenate([np.full((queries, 1), 101), g.integers(1000, 21000, (queries, tokens - 2)), np.full((queries, 1), 102)], axis=1)
    model = minilm_module(load_safetensors(model_path))
    batches = [ids[i:i + 64] for i in range(0, queries, 64)]
    if engine == "pytorch":
        with torch.inference_mode():
            model(torch.from_numpy(ids[:8]))
            start = time.perf_counter()
            for batch in batches:
                model(torch.from_numpy(batch))
            seconds = time.perf_counter() - start
        version = torch.__version__
    else:
        import tempfile
        import onnxruntime as ort
        path = os.path.join(tempfile.mkdtemp(), "minilm.onnx")
        torch.onnx.export(model, (torch.from_numpy(ids[:2]),), path, input_names=["ids"], output_names=["embedding"],
                          dynamic_axes={"ids": {0: "batch", 1: "tokens"}}, dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        session.run(None, {"ids": ids[:8]})
        start = time.perf_counter()
        for batch in batches:
            session.run(None, {"ids": batch})
        seconds = time.perf_counter() - start
        version = ort.__version__
    return {"engine": engine, "version": version, "tokens": tokens, "queries": queries, "queries_per_second": queries / seconds}


def compare(title, commands, runs, metric):
    results = {name: [] for name, _ in commands}
    for run in range(runs):
        order = list(commands) if run % 2 == 0 else list(reversed(commands))
        for name, cmd in order:
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            results[name].append(json.loads(line)[metric])
            print(f"  run {run + 1}  {name:12s} {results[name][-1]:10.1f}", flush=True)
    print(f"{title} ({metric.replace('_', ' ')}, best / median of {runs})")
    f = results["fedroute"]
    for name, values in results.items():
        ratio = "" if name == "fedroute" else f"   fedroute / {name}: best {max(f) / max(values):.2f}, median {statistics.median(f) / statistics.median(values):.2f}"
        print(f"  {name:12s} {max(values):10.1f} / {statistics.median(values):10.1f}{ratio}")
    print(flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bench", default=".build/release/fedroute-bench")
    parser.add_argument("--only", choices=["mlp", "minilm"])
    parser.add_argument("--model", default=".fedroute-models/all-MiniLM-L6-v2/model.safetensors")
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--minilm-engine", choices=["pytorch", "onnxruntime"], help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--queries", type=int, default=256, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_only:
        print(json.dumps(torch_run(args.rows, args.epochs, args.threads)))
        return
    if args.minilm_engine:
        print(json.dumps(minilm_run(args.minilm_engine, args.tokens, args.queries, args.threads, args.model)))
        return
    if not os.path.exists(args.bench):
        sys.exit(f"{args.bench} not found: swift build -c release --product fedroute-bench")
    me = [sys.executable, __file__, "--threads", str(args.threads)]
    if args.only in (None, "mlp"):
        compare(f"MLP-Router training, {args.rows} rows × {args.epochs} epochs, batch 128; PyTorch eager, heads fused, {args.threads} threads",
                [("fedroute", [args.bench, "--only", "mlp-train", "--rows", str(args.rows), "--epochs", str(args.epochs)]),
                 ("pytorch", me + ["--torch-only", "--rows", str(args.rows), "--epochs", str(args.epochs)])],
                args.runs, "samples_per_second")
    if args.only in (None, "minilm"):
        if not os.path.exists(args.model):
            sys.exit(f"{args.model} not found: scripts/fetch-minilm.sh")
        for tokens, queries in ((15, 1024), (256, 128)):
            size = ["--tokens", str(tokens), "--queries", str(queries)]
            compare(f"MiniLM-L6, {queries} sequences of {tokens} tokens, batches of 64, {args.threads} threads",
                    [("fedroute", [args.bench, "--only", "minilm-speed"] + size),
                     ("pytorch", me + ["--minilm-engine", "pytorch", "--model", args.model] + size),
                     ("onnxruntime", me + ["--minilm-engine", "onnxruntime", "--model", args.model] + size)],
                    args.runs, "queries_per_second")


if __name__ == "__main__":
    main()
