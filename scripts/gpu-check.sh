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
#   scripts/gpu-check.sh --prebuilt (on a GPU machine without Rust: the
#                                    binaries scripts/gpu-pack.sh packed)
# GPU_PEAK_TFLOPS=67 adds each GFLOP/s figure's share of that f32 peak (an
# H200: about 67). A hardware GPU runs the hardware kernels (workgroup-memory
# tiles, split-k); BYOL_GPU_KERNELS=software scripts/gpu-check.sh measures the
# software adapter's kernels on it instead, for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
export BYOL_REQUIRE_GPU=1 CARGO_TERM_COLOR=never
size=--large
prebuilt=
for arg in "$@"; do
  case $arg in
    --quick) size=--quick ;;
    --prebuilt) prebuilt=1 ;;
    *) echo "gpu-check.sh: unknown argument $arg (--quick, --prebuilt)" >&2; exit 2 ;;
  esac
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [ -n "$prebuilt" ]; then
  [ -f .gpucheck/bins.tar.xz ] || { echo "no .gpucheck/bins.tar.xz: run scripts/gpu-pack.sh first" >&2; exit 1; }
  # The Vulkan loader, where the machine lacks it (unpacked into /: for a
  # throwaway machine only).
  if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$icd}
  # The tests' compiled-in paths name the checkout they were built in.
  packed_at=$(cat .gpucheck/root)
  if [ "$packed_at" != "$(pwd)" ] && [ ! -e "$packed_at" ]; then
    mkdir -p "$(dirname "$packed_at")" && ln -s "$(pwd)" "$packed_at"
  fi
  tar -C "$out" -xJf .gpucheck/bins.tar.xz
  mkdir -p target/release target/debug
  mv "$out/bin/byol-release" target/release/byol
  mv "$out/bin/byol-debug" target/debug/byol
fi
[ -n "$prebuilt" ] || {
  cargo build -q --release -p cli
  cargo test -q --workspace --no-run 2>/dev/null
}
start=$(date +%s)

adapter=$(BYOL_DEVICE=gpu target/release/byol devices 2>&1 | head -20)
# Every test with "gpu" in its path: the GPU backend's own tests, and the
# GPU runs of the layers, the step, training, evaluation and the CLI.
if [ -n "$prebuilt" ]; then
  for t in "$out"/bin/tests-*; do timeout 600 "$t" gpu >>"$out/tests.txt" 2>&1 || true; done
else
  cargo test -q --workspace gpu >"$out/tests.txt" 2>&1 || true
fi
passed=$(grep -o '[0-9]* passed' "$out/tests.txt" | awk '{s += $1} END {print s + 0}')
failed=$(grep -o '[0-9]* failed' "$out/tests.txt" | awk '{s += $1} END {print s + 0}')
tested=$(date +%s)

peak=()
[ -n "${GPU_PEAK_TFLOPS:-}" ] && peak=(--peak-tflops "$GPU_PEAK_TFLOPS")
target/release/byol bench --device gpu "$size" --reps 3 "${peak[@]}" --out "$out/bench.json" \
  >"$out/bench.txt" 2>"$out/bench.err" || { cat "$out/bench.err"; exit 1; }
done_at=$(date +%s)
# GPU_CHECK_OUT=dir keeps the full test log and the JSON figures.
[ -n "${GPU_CHECK_OUT:-}" ] && cp "$out/tests.txt" "$out/bench.json" "$GPU_CHECK_OUT/"

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
