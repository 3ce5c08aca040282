#!/usr/bin/env bash
# The GPU check, in one prepared run: every kernel against its CPU function, training on
# the GPU against training on the CPU, then one epoch of every model of the study with
# `--device cuda`, side by side with PyTorch on the same card.
#
#   scripts/gpu-check.sh prepare   here (no GPU needed): builds the CUDA test binaries, the
#                                  GPU step bench and the main binary, copies them,
#                                  stripped, into the git-ignored .gpu/, with MNIST and
#                                  ../shared/peers/torch_ref.py
#   scripts/gpu-check.sh run       on the GPU machine, from the repository root, with .gpu
#                                  carried: runs the tests with REQUIRE_CUDA=1, times the
#                                  steps (benches/gpu_step.rs), then
#                                  `all --epochs 1 --device cuda` and torch_ref.py for each of
#                                  its models, and writes the logs and a summary to $OUT
#
# With the device tool (see the tool library's device/README.md), after `prepare`:
#   run(command="bash scripts/gpu-check.sh run", carry=[".gpu"], timeout_s=540)
# (about 1 minute of tests, 1 to 2 of our epochs, 2 to 4 of PyTorch's; TRAIN=0 skips the
# side by side, TORCH=0 PyTorch alone, GRAPHS=0 the CUDA-graph section; SANITIZE=1 adds compute-sanitizer's memcheck over the
# parity tests and initcheck over the training tests, a few minutes more.)
# The binaries are built here and carried because the GPU machine has no Rust toolchain
# and cannot fetch crates; it is x86-64 with a newer glibc than this machine's, so they run
# there. NVRTC is not carried (105 MB): that machine's CUDA 13.0 toolkit, or its Python's
# nvidia-cuda-nvrtc wheel, provides libnvrtc.so.13 (see find_nvrtc below).
#
# Output in $OUT (at most 8 files come back): summary.txt (one line per test binary, the
# table of epoch seconds and test MSEs, and the verdict), compile.log, parity.log,
# training.log (the test binaries'), env.txt (card, driver, the NVRTC used, torch),
# ours.json (the main binary's --json line), torch.jsonl (torch_ref.py's lines) and
# train.log (both trainers' stderr).
set -euo pipefail
cd "$(dirname "$0")/.."

# The test binaries that need a GPU or NVRTC: tests/cuda_*.rs.
TESTS=(cuda_compile cuda_parity cuda_training)

prepare() {
    mkdir -p .gpu/bin
    local args=()
    for t in "${TESTS[@]}"; do args+=(--test "$t"); done
    # cargo prints one JSON object per artifact; the test executables are the ones with
    # an "executable" whose target is one of ours.
    # `cargo bench --no-run` builds the bench with the same release profile.
    { cargo test --release --no-run --message-format=json "${args[@]}"; cargo bench --no-run --message-format=json --bench gpu_step; } |
        python3 -c '
import json, sys, shutil, subprocess
want = set(sys.argv[1:])
for line in sys.stdin:
    msg = json.loads(line)
    exe = msg.get("executable")
    if msg.get("reason") == "compiler-artifact" and exe and msg["target"]["name"] in want:
        dst = ".gpu/bin/" + msg["target"]["name"]
        shutil.copy(exe, dst)
        subprocess.run(["strip", "--strip-debug", dst], check=True)
        print("prepared", dst)
' "${TESTS[@]}" gpu_step
    cargo build --release --bin autoencoders
    cp target/release/autoencoders .gpu/bin/autoencoders
    strip --strip-debug .gpu/bin/autoencoders
    # ../shared does not travel: the peer and the data set go into the carried folder.
    mkdir -p .gpu/peers .gpu/mnist
    cp -f ../shared/peers/torch_ref.py .gpu/peers/
    cp -f ../shared/mnist/*-ubyte.gz .gpu/mnist/
    du -sh .gpu
}

# The first folder holding libnvrtc.so.13: the toolkit, then Python's pip wheel.
find_nvrtc() {
    local d
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
             $(python3 -c 'import nvidia, os; print(*[os.path.join(p, "cu13", "lib") for p in nvidia.__path__])' 2>/dev/null); do
        if [[ -e "$d/libnvrtc.so.13" ]]; then echo "$d"; return; fi
    done
}

run() {
    local out="${OUT:-.gpu/out}"
    mkdir -p "$out"
    for t in "${TESTS[@]}" autoencoders; do
        [[ -x ".gpu/bin/$t" ]] || { echo "gpu-check: .gpu/bin/$t missing; run 'scripts/gpu-check.sh prepare' here and carry .gpu" >&2; exit 2; }
    done
    local nvrtc
    nvrtc="$(find_nvrtc)"
    [[ -n "$nvrtc" ]] && export LD_LIBRARY_PATH="$nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # The driver's own folder, where the container mounts it.
    [[ -d /usr/local/nvidia/lib64 ]] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/usr/local/nvidia/lib64"
    {
        echo "date: $(date -u +%FT%TZ)"
        echo "nvrtc folder: ${nvrtc:-none found}"
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "nvidia-smi failed"
        python3 -c 'import torch; print("torch", torch.__version__, "with CUDA" if torch.cuda.is_available() else "without CUDA")' 2>/dev/null || echo "torch: not importable"
    } >"$out/env.txt"
    cat "$out/env.txt"

    # The tests read kernels/ and src/cuda/ from the crate root: this checkout, not the
    # build machine's path baked into the binaries; cuda_training runs the main binary.
    export CARGO_MANIFEST_DIR="$PWD" REQUIRE_CUDA=1 REQUIRE_NVRTC=1 RUST_BACKTRACE=1 AUTOENCODERS_BIN="$PWD/.gpu/bin/autoencoders"
    local verdict=0 rc
    : >"$out/summary.txt"
    for t in "${TESTS[@]}"; do
        local log="$out/${t#cuda_}.log"
        set +e
        timeout 120 ".gpu/bin/$t" --test-threads=1 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        set -e
        echo "$t: $( [[ $rc == 0 ]] && echo passed || echo "FAILED (exit $rc)" ); $(grep -E '^test result' "$log" | tail -n1)" >>"$out/summary.txt"
        [[ $rc == 0 ]] || verdict=1
    done
    # Where a step's time goes (benches/gpu_step.rs): timing, not part of the verdict.
    if [[ -x .gpu/bin/gpu_step ]]; then
        echo "== benches/gpu_step.rs" >>"$out/summary.txt"
        timeout 120 .gpu/bin/gpu_step >>"$out/summary.txt" 2>&1 || echo "gpu_step failed (exit $?)" >>"$out/summary.txt"
    fi
    [[ "${GRAPHS:-1}" == 0 ]] || graphs "$out"
    [[ "${SANITIZE:-0}" == 0 ]] || sanitize "$out" || verdict=1
    [[ "${TRAIN:-1}" == 0 ]] || side_by_side "$out" || verdict=1
    cat "$out/summary.txt"
    exit "$verdict"
}

# The CUDA-graph capture path (src/cuda/graph.rs), switched on by AUTOENCODERS_CUDA_GRAPHS=1,
# which also gives the GPU its own stream instead of the legacy default one. Written on a
# machine without a GPU, so its first runs are here: the training tests on that stream (must
# pass as on the default one), then the step bench with a replayed graph per model. Reported
# in the summary, outside the verdict, until it has run once; GRAPHS=0 skips it.
graphs() {
    local out="$1" rc log
    log="$(mktemp)"
    echo "== CUDA graphs (AUTOENCODERS_CUDA_GRAPHS=1): not part of the verdict yet" >>"$out/summary.txt"
    set +e
    AUTOENCODERS_CUDA_GRAPHS=1 timeout 120 .gpu/bin/cuda_training --test-threads=1 >"$log" 2>&1
    rc=$?
    set -e
    echo "cuda_training on the GPU's own stream: $( [[ $rc == 0 ]] && echo passed || echo "FAILED (exit $rc)" ); $(grep -E '^test result' "$log" | tail -n1)" >>"$out/summary.txt"
    # Only the summary is sure to come back: a failure's first lines go into it.
    [[ $rc == 0 ]] || grep -m 30 -E 'panicked|error|FAILED' "$log" >>"$out/summary.txt" || true
    [[ -x .gpu/bin/gpu_step ]] || return 0
    AUTOENCODERS_CUDA_GRAPHS=1 timeout 120 .gpu/bin/gpu_step --graph ae h64 h900 manifold >>"$out/summary.txt" 2>&1 ||
        echo "gpu_step --graph failed (exit $?)" >>"$out/summary.txt"
}

# compute-sanitizer over the test binaries: memcheck (out-of-bounds and misaligned accesses)
# on the parity tests, which run every kernel on shapes at and past its edges, and
# initcheck (reads of memory never written) on the training tests, which run whole steps
# of every model, where op outputs are allocated unset (`Gpu::uninit`).
sanitize() {
    local out="$1" san rc tool t tool_test log
    san="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
    if [[ ! -x "$san" ]]; then
        echo "sanitize: compute-sanitizer not found" >>"$out/summary.txt"
        return 1
    fi
    for tool_test in memcheck:cuda_parity initcheck:cuda_training; do
        tool="${tool_test%%:*}" t="${tool_test#*:}"
        set +e
        log="$(mktemp)"
        timeout 300 "$san" --tool "$tool" --error-exitcode 9 ".gpu/bin/$t" --test-threads=1 >"$log" 2>&1
        rc=$?
        set -e
        echo "compute-sanitizer $tool on $t: $( [[ $rc == 0 ]] && echo "no errors" || echo "FAILED (exit $rc)" ); $(grep -E 'ERROR SUMMARY' "$log" | tail -n1)" >>"$out/summary.txt"
        # The summary is what comes back: a failure's first reports go into it.
        [[ $rc == 0 ]] || { grep -m 40 -E '=========' "$log" >>"$out/summary.txt"; return 1; }
    done
}

# One epoch of every model of the study on the GPU, ours (`all`, which trains each model
# once) and PyTorch's (torch_ref.py, one process per model), then a table of both.
side_by_side() {
    local out="$1" runs rc
    runs="$(mktemp -d)"
    echo "== ours: all --epochs 1 --device cuda" | tee "$out/train.log"
    set +e
    timeout 200 .gpu/bin/autoencoders all --epochs 1 --device cuda --data .gpu/mnist --out "$runs" --json >"$out/ours.json" 2>>"$out/train.log"
    rc=$?
    set -e
    echo "all --epochs 1 --device cuda: $( [[ $rc == 0 ]] && echo passed || echo "FAILED (exit $rc); see train.log" )" >>"$out/summary.txt"
    echo "card: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo unknown)" >>"$out/summary.txt"
    : >"$out/torch.jsonl"
    if [[ "${TORCH:-1}" == 0 ]]; then
        echo "torch: skipped (TORCH=0)" >>"$out/summary.txt"
    elif [[ $rc != 0 ]]; then
        echo "torch: skipped, since our run failed (no table to set it beside)" >>"$out/summary.txt"
    elif ! python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        echo "torch: not importable with CUDA on this machine, so no side by side" >>"$out/summary.txt"
    else
        local m
        for m in $(python3 -c 'import json, sys; print(*[r["model"] for r in json.load(open(sys.argv[1]))["runs"]])' "$out/ours.json" 2>/dev/null); do
            echo "== torch_ref.py $m --device cuda --epochs 1" >>"$out/train.log"
            MNIST_DIR=.gpu/mnist timeout 60 python3 .gpu/peers/torch_ref.py "$m" --device cuda --epochs 1 >>"$out/torch.jsonl" 2>>"$out/train.log" ||
                echo "torch_ref.py $m failed; see train.log" >>"$out/summary.txt"
        done
    fi
    python3 - "$out/ours.json" "$out/torch.jsonl" >>"$out/summary.txt" <<'PY'
import json, sys
try:
    run = json.load(open(sys.argv[1]))
    ours = {r["model"]: r for r in run["runs"]}
except Exception as e:
    print(f"no table: our run left no JSON line ({e})"); sys.exit(1)
theirs = {}
for line in open(sys.argv[2]):
    try:
        r = json.loads(line); theirs[r["model"]] = r
    except ValueError:
        pass
print(f"{'model':<20}{'ours s/epoch':>13}{'torch s/epoch':>14}{'torch/ours':>11}{'ours test MSE':>15}{'torch test MSE':>16}")
for m, r in ours.items():
    s = r["epoch_seconds"][0]
    t = theirs.get(m)
    ts = t["epoch_seconds"][0] if t else None
    cell = lambda v, f: format(v, f) if v is not None else "-"
    print(f"{m:<20}{s:>13.2f}{cell(ts, '14.2f'):>14}{cell(ts / s if ts else None, '10.2f'):>11}"
          f"{r['test_mse']:>15.5f}{cell(t['test_mse_per_pixel'] if t else None, '16.5f'):>16}")
print(f"ours: all --epochs 1 --device cuda took {run['wall_seconds']:.1f} s in all (PCA, evaluation and figures included)")
PY
    [[ $rc == 0 ]]
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: scripts/gpu-check.sh prepare|run" >&2; exit 2 ;;
esac
