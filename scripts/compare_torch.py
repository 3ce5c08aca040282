#!/usr/bin/env python3
"""Training speed of every model beside PyTorch's, in the steady state, on this machine, same thread count.

usage: scripts/compare_torch.py [--threads 2] [--epochs 3] [--reps 1] [--steps N] [--python PATH]
                                [--baseline BIN] [MODEL ...]

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

`--baseline BIN` also times a change: BIN is the program built from an earlier commit
(`git worktree add ../base COMMIT && cargo build --release` there), and each model is then
trained, in the same rotation, by BIN and by this tree's `target/release/autoencoders` through
the command line (`hidden --size 64 --epochs EPOCHS --json`, ...), whose JSON line gives each
epoch's seconds. A second table gives both medians, after / before, and whether the two
programs printed the same test MSE.
PyTorch for it: python3 -m venv ../torch-venv && ../torch-venv/bin/pip install torch numpy scikit-learn
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

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


# The command line that trains each model (for --baseline, which times whole programs).
from agreement import OURS as CLI


def program(binary, model, args, out):
    """A whole run of the program `binary` on `model`: its epoch seconds and test MSE."""
    cmd = [binary, *CLI[model], "--epochs", str(args.epochs), "--threads", str(args.threads), "--device", "cpu",
           "--out", out, "--json"]
    if args.steps:
        cmd += ["--train-limit", str(64 * args.steps)]
    stdout, _ = timed(cmd)
    line = json.loads(stdout.strip().splitlines()[-1])
    run = next(r for r in line["runs"] if r["model"] == model)
    return run["epoch_seconds"], run["test_mse"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=MODELS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0, help="shorten every epoch to this many steps (a quick look, not the steady state)")
    ap.add_argument("--python", default=next((p for p in PYTHONS if os.path.exists(p)), PYTHONS[0]))
    ap.add_argument("--baseline", help="the program built from an earlier commit, timed beside this tree's")
    args = ap.parse_args()
    current = os.path.join(ROOT, "target", "release", "autoencoders")
    if args.baseline:
        for path in (args.baseline, current):
            if not os.access(path, os.X_OK):
                sys.exit(f"error: no program at {path}; build it with cargo build --release")
        unknown = [m for m in args.models if m not in CLI]
        if unknown:
            sys.exit(f"error: --baseline times only {sorted(CLI)}, not {unknown}")
    out = tempfile.mkdtemp(prefix="compare-torch-runs-") if args.baseline else None
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
    ae_rates, changes = [], []
    for model in args.models:
        runs = {"ours": [], "torch": [], "flush": [], "before": [], "after": []}
        rss = {"ours": [], "torch": []}
        mse = {"before": set(), "after": set()}

        def run_ours():
            r, mb = ours(binary, model, args)
            runs["ours"].append(r); rss["ours"].append(mb)

        def run_torch(flush):
            seconds, mb = theirs(model, args, flush)
            runs["flush" if flush else "torch"].append(seconds); rss["torch"].append(mb)

        def run_program(side):
            seconds, test_mse = program(args.baseline if side == "before" else current, model, args, out)
            runs[side].append(seconds); mse[side].add(round(test_mse, 9))

        order = [run_ours, lambda: run_torch(False), lambda: run_torch(True)]
        if args.baseline:
            order += [lambda: run_program("before"), lambda: run_program("after")]
        for rep in range(args.reps):
            for run in order[rep % len(order):] + order[:rep % len(order)]:
                run()
        if args.baseline:
            changes.append((model, statistics.median(later_median(s) for s in runs["before"]),
                            statistics.median(later_median(s) for s in runs["after"]), mse["before"] == mse["after"]))
        a = statistics.median(r["median_epoch_s"] for r in runs["ours"])
        b = statistics.median(later_median(s) for s in runs["torch"])
        c = statistics.median(later_median(s) for s in runs["flush"])
        first = statistics.median(r["last_over_first"] for r in runs["ours"])
        second = statistics.median(r["last_over_second"] for r in runs["ours"])
        if model == "ae":
            ae_rates = [(r["gflops"], r["dense_gflops"]) for r in runs["ours"]]
        print(f"| {model} | {a:.2f} | {b:.2f} | {c:.2f} | {b / a:.2f} | {c / a:.2f} | {first:.2f} | {second:.2f} "
              f"| {max(rss['ours']):.0f} | {max(rss['torch']):.0f} |", flush=True)
    if changes:
        print(f"\nbefore: {args.baseline}; after: {current} (the command line, whole runs, median epoch from 2 on)\n")
        print("| model | before s | after s | after / before | same test MSE |")
        print("| --- | --- | --- | --- | --- |")
        for model, before, after, same in changes:
            print(f"| {model} | {before:.2f} | {after:.2f} | {after / before:.2f} | {'yes' if same else 'no'} |")
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
