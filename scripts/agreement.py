#!/usr/bin/env python3
"""Agreement with PyTorch, measured: our test MSE and the peer's over several seeds.

For each model and seed, trains ours (the release binary, one experiment run per model and
seed) and PyTorch's (../shared/peers/torch_ref.py, the same layers, optimiser and batch), in
alternating order so that both sides see the same machine load, and prints a Markdown table:
each side's mean +- standard deviation of the test MSE per pixel, the difference of the
means, and whether it is inside two combined standard errors, 2 sqrt(sd1^2/n1 + sd2^2/n2).

    MNIST_DIR=../shared/mnist /work/torch-venv/bin/python scripts/agreement.py \\
        --seeds 5 --epochs 10 --threads 2 --results /tmp/agreement.jsonl

Every finished run is appended to --results as one JSON line (side, model, seed, test_mse),
and runs already there are not repeated: an interrupted measurement resumes where it stopped,
and `--table-only` prints the table from the file. Not part of the test suite: it needs the
PyTorch venv and takes an hour of CPU.
"""
import argparse, json, math, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEER = os.path.join(ROOT, "..", "shared", "peers", "torch_ref.py")

# Our subcommand (and its flags) for each model the peer knows (compare_torch.py uses it too).
OURS = {
    "h64": ["hidden", "--size", "64"],
    "h128": ["hidden", "--size", "128"],
    "h256": ["hidden", "--size", "256"],
    "h900": ["hidden", "--size", "900"],
    "sparse-0.1": ["sparse", "--lambda", "0.1"],
    "denoise-0.3": ["denoise", "--noise", "0.3"],
    "manifold": ["manifold"],
    "ae": ["ae"],
    "cae-unpool": ["cae-unpool"],
    "cae-deconv": ["cae-deconv"],
    "cae-deconv-unpool": ["cae-deconv-unpool"],
}


def last_json_line(text, what):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    sys.exit(f"agreement: {what} printed no JSON line")


def run_ours(args, model, seed, out):
    cmd = [args.bin, *OURS[model], "--seed", str(seed), "--epochs", str(args.epochs), "--threads", str(args.threads),
           "--device", "cpu", "--out", out, "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"agreement: {' '.join(cmd)} failed: {p.stderr.strip().splitlines()[-1:]}")
    line = last_json_line(p.stdout, "our binary")
    run = next(r for r in line["runs"] if r["model"] == model)
    return run["test_mse"]


def run_peer(args, model, seed):
    cmd = [args.python, PEER, model, "--seed", str(seed), "--epochs", str(args.epochs), "--threads", str(args.threads)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"agreement: {' '.join(cmd)} failed: {p.stderr.strip().splitlines()[-1:]}")
    return last_json_line(p.stdout, "torch_ref.py")["test_mse_per_pixel"]


def mean_sd(v):
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else float("nan")
    return m, sd


def table(results, models, epochs):
    rows = ["| model | ours: mean ± sd | PyTorch: mean ± sd | seeds | ours − PyTorch | 2 combined SE | agree |",
            "|---|---|---|---|---|---|---|"]
    for model in models:
        ours = [r["test_mse"] for r in results if r["side"] == "ours" and r["model"] == model and r["epochs"] == epochs]
        peer = [r["test_mse"] for r in results if r["side"] == "pytorch" and r["model"] == model and r["epochs"] == epochs]
        if len(ours) < 2 or len(peer) < 2:
            rows.append(f"| {model} | {len(ours)} runs | {len(peer)} runs | | | | too few runs |")
            continue
        (mo, so), (mp, sp) = mean_sd(ours), mean_sd(peer)
        se2 = 2 * math.sqrt(so ** 2 / len(ours) + sp ** 2 / len(peer))
        diff = mo - mp
        rows.append(f"| {model} | {mo:.5f} ± {so:.5f} | {mp:.5f} ± {sp:.5f} | {len(ours)} / {len(peer)} | "
                    f"{diff:+.5f} ({100 * diff / mp:+.1f}%) | {se2:.5f} | {'yes' if abs(diff) < se2 else 'no'} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="h64,h128,manifold,ae,cae-deconv-unpool")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "autoencoders"))
    ap.add_argument("--python", default=sys.executable, help="the Python with torch (the peer's)")
    ap.add_argument("--results", default=os.path.join(ROOT, ".cache", "agreement.jsonl"))
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    models = args.models.split(",")
    unknown = [m for m in models if m not in OURS]
    if unknown:
        sys.exit(f"agreement: unknown model(s) {unknown}; choose from {sorted(OURS)}")
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    results = []
    if os.path.exists(args.results):
        with open(args.results) as f:
            results = [json.loads(line) for line in f if line.strip()]
    done = {(r["side"], r["model"], r["seed"], r["epochs"]) for r in results}
    if not args.table_only:
        out = tempfile.mkdtemp(prefix="agreement-runs-")
        # Model by model, so that an interrupted measurement has all seeds of the first ones.
        for i, model in enumerate(models):
            for seed in range(args.seeds):
                # Alternate which side goes first, so neither always meets the same load.
                sides = ["ours", "pytorch"] if (seed + i) % 2 == 0 else ["pytorch", "ours"]
                for side in sides:
                    if (side, model, seed, args.epochs) in done:
                        continue
                    mse = run_ours(args, model, seed, out) if side == "ours" else run_peer(args, model, seed)
                    r = {"side": side, "model": model, "seed": seed, "epochs": args.epochs, "test_mse": mse}
                    print(json.dumps(r), file=sys.stderr, flush=True)
                    results.append(r)
                    with open(args.results, "a") as f:
                        f.write(json.dumps(r) + "\n")
    print(table(results, models, args.epochs))


if __name__ == "__main__":
    main()
