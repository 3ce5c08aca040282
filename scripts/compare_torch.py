#!/usr/bin/env python3
"""Training speed of every model beside PyTorch's, on this machine, same thread count.

usage: scripts/compare_torch.py [--threads 2] [--reps 5] [--python /tmp/torch/bin/python] [MODEL ...]

For each model, our step (`cargo bench --bench step`) and `../shared/peers/torch_ref.py
MODEL --epochs 1 --steps N` run alternately, REPS times each; the table gives the median
milliseconds per step of each, their ratio (PyTorch / ours: above 1 means we are faster), the
lowest and highest ratio of the REPS pairs run back to back (how much the machine's noise
moves it), our GFLOP/s as the arithmetic done and as the dense products the step stands
for (the terms left out for units that are zero across the batch counted too), and the
highest peak resident memory of each side's runs (/usr/bin/time; both load the whole of
MNIST). Then the peak memory of a 1-epoch `ae` run of each, and, when `ae` is among the
models, this machine's SGEMM rate through our own GEMM path (`cargo bench --bench ops --
gemm`) beside the deep AE step's two rates, measured in the same run. These machines are
shared and noisy: compare ratios from one run, never numbers across runs.
PyTorch for it: python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch numpy scikit-learn
"""
import argparse, json, os, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(ROOT, "..", "shared", "peers", "torch_ref.py")
MODELS = ["ae", "h64", "h128", "h256", "h900", "sparse-0.1", "denoise-0.3", "manifold",
          "cae-unpool", "cae-deconv", "cae-deconv-unpool"]
# Fewer steps for the slow convolutional models: the median of 5 still takes minutes.
STEPS = {"cae-unpool": 60, "cae-deconv": 60, "cae-deconv-unpool": 60}


def step_binary():
    out = subprocess.run(["cargo", "bench", "--bench", "step", "--no-run", "--message-format=json"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "step" and msg.get("executable"):
            return msg["executable"]
    sys.exit("compare_torch: cannot find the step bench binary")


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time: its stdout, and its peak resident memory in MB."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout, int(out.stderr.strip().splitlines()[-1]) / 1024


def ours(binary, model, steps, threads):
    """Our step bench: its JSON line (ms_per_step, gflops, dense_gflops), and the run's peak RSS."""
    stdout, rss = timed([binary, model, str(steps)], dict(os.environ, RAYON_NUM_THREADS=str(threads)))
    return json.loads(stdout.strip().splitlines()[-1]), rss


def theirs(python, model, steps, threads):
    """PyTorch's ms per step, and the run's peak RSS."""
    stdout, rss = timed([python, PEER, model, "--epochs", "1", "--steps", str(steps), "--threads", str(threads)])
    return 1e3 * json.loads(stdout)["epoch_seconds"][0] / steps, rss


def peak_rss_mb(cmd, env=None):
    return timed(cmd, env)[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=MODELS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--python", default="/tmp/torch/bin/python")
    args = ap.parse_args()
    os.environ.setdefault("MNIST_DIR", os.path.join(ROOT, "..", "shared", "mnist"))
    binary = step_binary()
    print("| model | ours ms/step | PyTorch ms/step | PyTorch / ours | pairs: lowest, highest | our GFLOP/s: done, dense | ours MB | PyTorch MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in args.models:
        steps = STEPS.get(model, args.steps)
        a, b, g, gd, rss_a, rss_b = [], [], [], [], [], []

        def run_ours():
            r, rss = ours(binary, model, steps, args.threads)
            a.append(r["ms_per_step"]); g.append(r["gflops"]); gd.append(r["dense_gflops"]); rss_a.append(rss)

        def run_theirs():
            ms, rss = theirs(args.python, model, steps, args.threads)
            b.append(ms); rss_b.append(rss)

        for rep in range(args.reps):
            # Each repetition is a pair run back to back, in alternating order, so that a
            # drift in the machine's speed weighs on both sides alike.
            for run in ((run_ours, run_theirs) if rep % 2 == 0 else (run_theirs, run_ours)):
                run()
        ma, mb = statistics.median(a), statistics.median(b)
        pairs = sorted(y / x for x, y in zip(a, b))
        gf = "" if g[0] is None else f"{statistics.median(g):.1f}, {statistics.median(gd):.1f}"
        print(f"| {model} | {ma:.2f} | {mb:.2f} | {mb / ma:.2f} | {pairs[0]:.2f}, {pairs[-1]:.2f} | {gf} | {max(rss_a):.0f} | {max(rss_b):.0f} |", flush=True)
    # One full epoch of the deep AE each (938 steps): the same training run on both sides.
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    rss_ours = peak_rss_mb([binary, "ae", "938"], env)
    rss_torch = peak_rss_mb([args.python, PEER, "ae", "--epochs", "1", "--threads", str(args.threads)])
    print(f"\npeak RSS of a 1-epoch ae training run: ours {rss_ours:.0f} MB, PyTorch {rss_torch:.0f} MB ({rss_torch / rss_ours:.1f}x)")
    # This machine's SGEMM rate through our own GEMM path (par_gemm), measured now, beside
    # the deep AE's step: the yardstick for how much of the machine a step uses.
    if "ae" in args.models:
        gemm = gemm_rates(args.threads)
        ae = [ours(binary, "ae", args.steps, args.threads)[0] for _ in range(args.reps)]
        done, dense = (statistics.median(r[key] for r in ae) for key in ("gflops", "dense_gflops"))
        print("our SGEMM (par_gemm): " + ", ".join(f"{shape} {rate:.1f} GFLOP/s" for shape, rate in gemm.items()))
        big = gemm.get("1024x1024x1024")
        if big:
            print(f"deep AE step (median of {args.reps}): arithmetic done {done:.1f} GFLOP/s, {100 * done / big:.0f}% of the 1024^3 rate; "
                  f"as dense products {dense:.1f} GFLOP/s, {100 * dense / big:.0f}%")


def gemm_rates(threads):
    """GFLOP/s of `cargo bench --bench ops -- gemm`, by shape (each row a median)."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(["cargo", "bench", "--bench", "ops", "--", "gemm"], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    rates = {}
    for line in out.splitlines():
        if line.startswith("gemm "):
            parts = line.split()
            rates[parts[1]] = float(parts[-2])
    return rates


if __name__ == "__main__":
    main()
