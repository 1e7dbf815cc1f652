#!/usr/bin/env bash
# Measures this machine's GPU in one short run, for a session that is lent
# one: the GPU tests (required to run, not skip: BYOL_REQUIRE_GPU=1) and
# `byol bench --large` on the GPU (GEMM 1024-4096, the 3x3 convolution, the
# ResNet-18 step and the BYOL step at widths 16 and 64, batch 256, heads
# 4096/256), then one table with the adapter's name. The build comes first
# and is not part of the measured run.
#   scripts/gpu-check.sh            (on a machine with a GPU)
#   scripts/gpu-check.sh --quick    (small sizes: checks the script itself,
#                                    e.g. on Mesa's software adapter)
# GPU_PEAK_TFLOPS=67 adds each GFLOP/s figure's share of that f32 peak (an
# H200: about 67). A hardware GPU runs the hardware kernels (workgroup-memory
# tiles, split-k); BYOL_GPU_KERNELS=software scripts/gpu-check.sh measures the
# software adapter's kernels on it instead, for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
export BYOL_REQUIRE_GPU=1 CARGO_TERM_COLOR=never
size=--large
[ "${1:-}" = "--quick" ] && size=--quick
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cargo build -q --release -p cli
cargo test -q --workspace --no-run 2>/dev/null
start=$(date +%s)

adapter=$(BYOL_DEVICE=gpu target/release/byol devices 2>&1 | head -20)
# Every test with "gpu" in its path: the GPU backend's own tests, and the
# GPU runs of the layers, the step, training, evaluation and the CLI.
cargo test -q --workspace gpu >"$out/tests.txt" 2>&1 || true
passed=$(grep -o '[0-9]* passed' "$out/tests.txt" | awk '{s += $1} END {print s + 0}')
failed=$(grep -o '[0-9]* failed' "$out/tests.txt" | awk '{s += $1} END {print s + 0}')
tested=$(date +%s)

peak=()
[ -n "${GPU_PEAK_TFLOPS:-}" ] && peak=(--peak-tflops "$GPU_PEAK_TFLOPS")
target/release/byol bench --device gpu "$size" --reps 3 "${peak[@]}" --out "$out/bench.json" \
  >"$out/bench.txt" 2>"$out/bench.err" || { cat "$out/bench.err"; exit 1; }
done_at=$(date +%s)

echo "## GPU check ($(date -u +%Y-%m-%d), $(uname -m))"
echo
echo "$adapter"
echo "kernels: ${BYOL_GPU_KERNELS:-chosen by the adapter (hardware GPU: hardware kernels)}"
echo
echo "GPU tests: $passed passed, $failed failed ($((tested - start)) s)"
if [ "$failed" -gt 0 ]; then
  grep -E 'FAILED|panicked' "$out/tests.txt" | head -20
fi
echo "Benchmarks ($((done_at - tested)) s):"
cat "$out/bench.txt"
[ "$failed" -eq 0 ]
