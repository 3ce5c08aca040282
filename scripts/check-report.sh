#!/usr/bin/env bash
# Renders the HTML report of a quick `all` run in headless Chromium and checks that every
# image loads, that the page asks for nothing off the machine, and that all ten experiments
# are there with every number, every picture and every trained model's graph
# (scripts/check-report.mjs does the checking); then shows that the check fails on copies
# of the report with one defect each.
#
#   bash scripts/check-report.sh [BINARY]      (default: target/release/autoencoders)
#
# Needs the MNIST files ($MNIST_DIR, else ../shared/mnist) and a built binary; builds nothing.
# Installs, when missing: Debian's chromium (apt-get, as root) and playwright-core (npm, pinned,
# into the git-ignored .cache/report-check/).
# Env: REPORT_CHECK_KEEP=1 keeps the run folder (kept anyway on failure);
#      REPORT_CHECK_REPORT=PATH checks that index.html instead of making one (no run);
#      REPORT_CHECK_SCREENSHOT=PATH for the full-page screenshot (default .cache/report-check/screenshot.png);
#      REPORT_CHECK_MIN_IMAGES (raises the minimum of 50; cannot lower it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

PLAYWRIGHT_VERSION=1.65.1
CHROMIUM=/usr/bin/chromium
cache="$root/.cache/report-check"

fail() { echo "check-report: FAILED: $*" >&2; exit 1; }

bin="${1:-target/release/autoencoders}"
[[ -x "$bin" ]] || fail "no binary at $bin (run 'cargo build --release' or 'cargo test --release' first)"
export MNIST_DIR="${MNIST_DIR:-$(cd .. && pwd)/shared/mnist}"
[[ -d "$MNIST_DIR" ]] || fail "no MNIST folder at $MNIST_DIR (set MNIST_DIR)"

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

# Chromium, from Debian (a test tool's own browser download does not work on these machines).
if [[ ! -x "$CHROMIUM" ]]; then
    echo "check-report: installing chromium with apt-get" >&2
    { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
        || fail "could not install chromium with apt-get (needs root)"
    [[ -x "$CHROMIUM" ]] || fail "apt-get installed chromium but $CHROMIUM is not there"
fi
command -v node >/dev/null && command -v npm >/dev/null || fail "node and npm are needed (Node.js 20 or later)"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
    || fail "Node.js $(node --version) is too old for playwright-core $PLAYWRIGHT_VERSION (needs 20 or later)"

# playwright-core only (no browser download), pinned.
have=$(node -p "try { require('$cache/node_modules/playwright-core/package.json').version } catch { '' }" 2>/dev/null || true)
if [[ "$have" != "$PLAYWRIGHT_VERSION" ]]; then
    echo "check-report: installing playwright-core@$PLAYWRIGHT_VERSION into .cache/report-check" >&2
    mkdir -p "$cache"
    [[ -f "$cache/package.json" ]] || echo '{"name":"report-check","private":true}' > "$cache/package.json"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$cache" --no-audit --no-fund --loglevel=error \
        --save-exact "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null \
        || fail "npm install playwright-core@$PLAYWRIGHT_VERSION failed"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/report-check.XXXXXX")
# Removed on success; kept (run log, report, screenshot) on failure or with REPORT_CHECK_KEEP=1.
cleanup() {
    local rc=$?
    if [[ $rc -ne 0 || "${REPORT_CHECK_KEEP:-0}" == 1 ]]; then echo "check-report: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

start=$SECONDS
if [[ -n "${REPORT_CHECK_REPORT:-}" ]]; then
    report=$REPORT_CHECK_REPORT # an existing report: check it (and the broken copies) without a run
else
    "$bin" all --epochs 1 --train-limit 300 --out "$tmp/runs" > "$tmp/run.log" 2>&1 \
        || { tail -n 20 "$tmp/run.log" >&2; fail "'$bin all --epochs 1 --train-limit 300' exited non-zero (log above)"; }
    shopt -s nullglob
    reports=("$tmp"/runs/all-*/index.html)
    [[ ${#reports[@]} -eq 1 ]] || fail "expected one all-NNN/index.html under $tmp/runs, found ${#reports[@]}"
    report=${reports[0]}
fi
shot="${REPORT_CHECK_SCREENSHOT:-$cache/screenshot.png}"

check() { REPORT_CHECK_MODULES="$cache/node_modules" CHROMIUM="$CHROMIUM" node scripts/check-report.mjs "$@"; }
check "$report" "$shot" || fail "the rendered report did not pass (see above)"

# The check must fail on a broken report: the same page with one defect each, and the
# failure it must name. A blank figure is a flat 28x28 PNG (made with Python's zlib).
blank=$(python3 -c '
import base64, struct, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
raw = b"".join(b"\0" + bytes(28) for _ in range(28))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
print(base64.b64encode(png).decode())')
broken() { # NAME EXPECTED-MESSAGE JS-EXPRESSION-ON-html
    local page="$tmp/broken-$1.html"
    BLANK="$blank" node -e 'const fs = require("fs"); let html = fs.readFileSync(process.argv[1], "utf8");
        const out = (BLANK => eval(process.argv[3]))(process.env.BLANK);
        if (out === html) { console.error("the defect changed nothing"); process.exit(1); }
        fs.writeFileSync(process.argv[2], out);' "$report" "$page" "$3" || fail "could not make the broken report '$1'"
    if check "$page" "$tmp/broken-$1.png" 2> "$tmp/broken-$1.log"; then
        fail "the check passed a report with $1"
    fi
    grep -qF -- "$2" "$tmp/broken-$1.log" || { cat "$tmp/broken-$1.log" >&2; fail "the check failed the report with $1, but not for it"; }
}
broken "an empty cell" 'test MSE ""' 'html.replace(/(<tr><td>ae<\/td><td>)[^<]*/, "$1")'
broken "a blank image" "images are one flat colour" 'html.replace(/src="data:image\/png;base64,[^"]*"/, `src="data:image/png;base64,${BLANK}"`)'
broken "a figure without its image" "figures do not hold exactly one image" 'html.replace(/<figure><img[^>]*>/, "<figure>")'
broken "a missing experiment" "experiment headings missing: sparse" 'html.replace(/<h2 id="sparse">sparse<\/h2>/, "")'
broken "an unjudged observation" "observations missing or not judged" 'html.replace(/(<li[^>]*>)(holds|does not hold): /, "$1")'
broken "a model without its graph" "models without their graph (NAME.graph.svg): ae" 'html.replace(/alt="ae\.graph\.svg"/, "alt=\"ae.graph.png\"")'
broken "a CAE graph without index links" "graphs without one dashed index link per unpool: cae-unpool" \
    'html.replace(/(alt="cae-unpool\.graph\.svg" src=")[^"]*/, (_, head) => head + html.match(/alt="h64\.graph\.svg" src="([^"]*)"/)[1])'
echo "check-report: each of 7 broken reports failed, for its defect" >&2
echo "check-report: done in $((SECONDS - start)) s (run + render)" >&2
