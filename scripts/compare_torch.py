#!/usr/bin/env python3
"""Training speed of every model beside PyTorch's, in the steady state, on this machine, same thread count.

usage: scripts/compare_torch.py [--threads 2] [--epochs 3] [--reps 1] [--steps N] [--python PATH] [MODEL ...]

For each model, three whole training runs of EPOCHS epochs (batch 64, the full training set:
938 steps an epoch): ours (`cargo bench --bench step -- MODEL EPOCHS`), and
`../shared/peers/torch_ref.py MODEL --epochs EPOCHS` without and with `--flush-denormal`.
They run back to back, in an order that rotates with each repetition, so that a drift in
the machine's speed weighs on all three alike. Speed is the median epoch from epoch 2 on:
the first steps are not the steady state (Adam's moments of dead units used to decay into
subnormal floats some 800 steps in, which slowed later epochs; issue #16). The table gives
each side's median epoch in seconds (median over the repetitions), PyTorch / ours with
and without the flush (above 1: we are faster), our last epoch over our first and over
our second, and each side's peak resident memory (/usr/bin/time; both load the whole of
MNIST). Then, when `ae` is among the models, this machine's SGEMM rate through our own
GEMM path (`cargo bench --bench ops -- gemm`) beside the deep AE's rates over its epochs,
measured in the same run. `--steps N` shortens every epoch to N steps, on both sides, for
a quick look only. These machines are shared and noisy: compare ratios from one run,
never numbers across runs, and name the processor (`lscpu | grep 'Model name'`).
PyTorch for it: python3 -m venv ../torch-venv && ../torch-venv/bin/pip install torch numpy scikit-learn
"""
import argparse, json, os, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(ROOT, "..", "shared", "peers", "torch_ref.py")
MODELS = ["ae", "h64", "h128", "h256", "h900", "sparse-0.1", "denoise-0.3", "manifold",
          "cae-unpool", "cae-deconv", "cae-deconv-unpool"]
PYTHONS = [os.path.join(ROOT, "..", "torch-venv", "bin", "python"), "/work/torch-venv/bin/python", "/tmp/torch/bin/python"]


def step_binary():
    out = subprocess.run(["cargo", "bench", "--bench", "step", "--no-run", "--message-format=json"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "step" and msg.get("executable"):
            return msg["executable"]
    sys.exit("error: compare_torch cannot find the step bench binary")


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time: its stdout, and its peak resident memory in MB."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{out.stderr.strip()[-2000:]}")
    return out.stdout, int(out.stderr.strip().splitlines()[-1]) / 1024


def later_median(seconds):
    """The median epoch from epoch 2 on (epoch 1 if it is the only one)."""
    return statistics.median(seconds[1:] or seconds)


def ours(binary, model, args):
    """Our step bench's JSON line, and the run's peak RSS."""
    cmd = [binary, model, str(args.epochs)] + (["--steps", str(args.steps)] if args.steps else [])
    stdout, rss = timed(cmd, dict(os.environ, RAYON_NUM_THREADS=str(args.threads)))
    return json.loads(stdout.strip().splitlines()[-1]), rss


def theirs(model, args, flush):
    """PyTorch's epoch seconds, and the run's peak RSS."""
    cmd = [args.python, PEER, model, "--epochs", str(args.epochs), "--threads", str(args.threads)]
    cmd += (["--steps", str(args.steps)] if args.steps else []) + (["--flush-denormal"] if flush else [])
    stdout, rss = timed(cmd)
    return json.loads(stdout.strip().splitlines()[-1])["epoch_seconds"], rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=MODELS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0, help="shorten every epoch to this many steps (a quick look, not the steady state)")
    ap.add_argument("--python", default=next((p for p in PYTHONS if os.path.exists(p)), PYTHONS[0]))
    args = ap.parse_args()
    if args.epochs < 2:
        sys.exit("error: --epochs must be at least 2: the first epoch is not the steady state")
    if not os.path.exists(args.python):
        sys.exit(f"error: no Python at {args.python}; give --python the interpreter of a venv with torch")
    os.environ.setdefault("MNIST_DIR", os.path.join(ROOT, "..", "shared", "mnist"))
    binary = step_binary()
    torch_version = subprocess.run([args.python, "-c", "import torch; print(torch.__version__)"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown processor")
    print(f"{cpu}, {args.threads} threads, {args.epochs} epochs{f' of {args.steps} steps' if args.steps else ''}, "
          f"{args.reps} repetition(s); PyTorch {torch_version}; seconds per epoch, median from epoch 2 on\n")
    print("| model | ours s | PyTorch s | PyTorch flush s | PyTorch / ours | flush / ours | our last / first | our last / second | ours MB | PyTorch MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ae_rates = []
    for model in args.models:
        runs = {"ours": [], "torch": [], "flush": []}
        rss = {"ours": [], "torch": []}

        def run_ours():
            r, mb = ours(binary, model, args)
            runs["ours"].append(r); rss["ours"].append(mb)

        def run_torch(flush):
            seconds, mb = theirs(model, args, flush)
            runs["flush" if flush else "torch"].append(seconds); rss["torch"].append(mb)

        order = [run_ours, lambda: run_torch(False), lambda: run_torch(True)]
        for rep in range(args.reps):
            for run in order[rep % 3:] + order[:rep % 3]:
                run()
        a = statistics.median(r["median_epoch_s"] for r in runs["ours"])
        b = statistics.median(later_median(s) for s in runs["torch"])
        c = statistics.median(later_median(s) for s in runs["flush"])
        first = statistics.median(r["last_over_first"] for r in runs["ours"])
        second = statistics.median(r["last_over_second"] for r in runs["ours"])
        if model == "ae":
            ae_rates = [(r["gflops"], r["dense_gflops"]) for r in runs["ours"]]
        print(f"| {model} | {a:.2f} | {b:.2f} | {c:.2f} | {b / a:.2f} | {c / a:.2f} | {first:.2f} | {second:.2f} "
              f"| {max(rss['ours']):.0f} | {max(rss['torch']):.0f} |", flush=True)
    # This machine's SGEMM rate through our own GEMM path (par_gemm), measured now, beside
    # the deep AE's epochs: the yardstick for how much of the machine a step uses.
    if ae_rates:
        gemm = gemm_rates(args.threads)
        done, dense = statistics.median(r[0] for r in ae_rates), statistics.median(r[1] for r in ae_rates)
        print("\nour SGEMM (par_gemm): " + ", ".join(f"{shape} {rate:.1f} GFLOP/s" for shape, rate in gemm.items()))
        big = gemm.get("1024x1024x1024")
        if big:
            print(f"deep AE, median epoch: arithmetic done {done:.1f} GFLOP/s, {100 * done / big:.0f}% of the 1024^3 rate "
                  f"(its arithmetic at that rate would take {done / big:.2f} of the epoch); "
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
