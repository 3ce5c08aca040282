#!/usr/bin/env bash
# The GPU check: every kernel against its CPU function on a real GPU, in one prepared run.
#
#   scripts/gpu-check.sh prepare   here (no GPU needed): builds the CUDA test binaries and
#                                  copies them, stripped, into the git-ignored .gpu/
#   scripts/gpu-check.sh run       on the GPU machine, from the repository root, with .gpu
#                                  carried: runs them with REQUIRE_CUDA=1 and writes the
#                                  logs and a summary to $OUT
#
# With the device tool (see the tool library's device/README.md), after `prepare`:
#   run(command="bash scripts/gpu-check.sh run", carry=[".gpu"], timeout_s=300)
# The binaries are built here and carried because the GPU machine has no Rust toolchain
# and cannot fetch crates; it is x86-64 with a newer glibc than this machine's, so they run
# there. NVRTC is not carried (105 MB): that machine's CUDA 13.0 toolkit, or its Python's
# nvidia-cuda-nvrtc wheel, provides libnvrtc.so.13 (see find_nvrtc below).
#
# Output in $OUT (at most 8 files come back): summary.txt (one line per test binary and
# the verdict), compile.log, parity.log, env.txt (card, driver, the NVRTC used).
#
# TODO, the full-training GPU path (not built yet; each line is a step of issue 4's check):
#   - [ ] one epoch of every model with `--device cuda`, its wall time and test MSE;
#   - [ ] the same models with ../shared/peers/torch_ref.py --device cuda in the same call
#         (copy what it needs into .gpu/ here, since ../shared does not travel), side by side;
#   - [ ] 20 training steps of the deep AE and each CAE on both devices, losses within 1e-4;
#   - [ ] `all --epochs 10 --device cuda` under 60 s; a table of epoch times to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

# The test binaries that need a GPU or NVRTC: tests/cuda_*.rs.
TESTS=(cuda_compile cuda_parity)

prepare() {
    mkdir -p .gpu/bin
    local args=()
    for t in "${TESTS[@]}"; do args+=(--test "$t"); done
    # cargo prints one JSON object per artifact; the test executables are the ones with
    # an "executable" whose target is one of ours.
    cargo test --release --no-run --message-format=json "${args[@]}" |
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
' "${TESTS[@]}"
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
    for t in "${TESTS[@]}"; do
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
    } >"$out/env.txt"
    cat "$out/env.txt"

    # The tests read kernels/ and src/cuda/ from the crate root: this checkout, not the
    # build machine's path baked into the binaries.
    export CARGO_MANIFEST_DIR="$PWD" REQUIRE_CUDA=1 REQUIRE_NVRTC=1 RUST_BACKTRACE=1
    local verdict=0 rc
    : >"$out/summary.txt"
    for t in "${TESTS[@]}"; do
        local log="$out/${t#cuda_}.log"
        set +e
        timeout 240 ".gpu/bin/$t" --test-threads=1 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        set -e
        echo "$t: $( [[ $rc == 0 ]] && echo passed || echo "FAILED (exit $rc)" ); $(grep -E '^test result' "$log" | tail -n1)" >>"$out/summary.txt"
        [[ $rc == 0 ]] || verdict=1
    done
    cat "$out/summary.txt"
    exit "$verdict"
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: scripts/gpu-check.sh prepare|run" >&2; exit 2 ;;
esac
