#!/usr/bin/env bash
# Our CPU speed beside PyTorch's (and numpy's GEMM) on this machine, in one
# go: the comparisons issue 19 sets targets for, each run as PAIRS
# alternating pairs (ours, then theirs, then ours...) so that a slow spell
# of a shared machine falls on both sides alike, and reported as the ratio
# of each pair with the median over the pairs. 2 threads a side.
#
#   scripts/cpu-compare.sh [PAIRS]        (default 5)
#
#   GEMM n=256/512/1024  `cargo bench -p tensor --bench tensor_bench -- --gemm`
#                        against numpy's `a @ b` timed the same way (median
#                        of three runs of at least a second each)
#   ResNet-18 w16        `resnet_bench --only w16` against
#                        `models/benches/resnet_torch.py --only w16`
#   BYOL step w16        `step_bench --width 16` against the reference
#                        `byol_step_bench.py --impl plain --width 16`, with
#                        each side's peak resident memory
#   BYOL step w64        the same at width 64 when W64=1 (minutes a pair)
#
# PYTHON names the Python that has torch and torchvision (default python3;
# `pip install torch torchvision numpy`). The BYOL rows need the reference
# benchmark folder that holds byol_step_bench.py: TORCH_BENCH_DIR (without
# it they are skipped, saying so). STEPS sets the timed steps of each step
# benchmark (default 8). Nothing is written outside a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-5}
steps=${STEPS:-8}
python=${PYTHON:-python3}
case $pairs in '' | *[!0-9]* | 0)
  echo "cpu-compare: PAIRS must be a whole number of at least 1, got '$pairs'" >&2
  exit 2
  ;;
esac
if ! "$python" -c 'import torch, torchvision, numpy' 2>/dev/null; then
  echo "cpu-compare: '$python' cannot import torch, torchvision and numpy;" \
    "install them (pip install torch torchvision numpy) or set PYTHON" >&2
  exit 2
fi
byol_ref=""
if [ -n "${TORCH_BENCH_DIR:-}" ]; then
  byol_ref="$TORCH_BENCH_DIR/byol_step_bench.py"
  if [ ! -f "$byol_ref" ]; then
    echo "cpu-compare: TORCH_BENCH_DIR=$TORCH_BENCH_DIR holds no byol_step_bench.py" >&2
    exit 2
  fi
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2

echo "building the benchmarks..." >&2
# Built once; their executables are then run directly, so that each
# process's peak memory is the benchmark's own (not cargo's).
cargo bench --no-run -p tensor --bench tensor_bench -p models --bench resnet_bench \
  -p byol --bench step_bench --message-format=json 2>"$scratch/build.log" |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])' >"$scratch/benches" || {
  cat "$scratch/build.log" >&2
  exit 1
}
bench() { # bench NAME: the built benchmark's executable
  local path
  path=$(awk -v n="$1" '$1 == n {print $2}' "$scratch/benches")
  [ -x "$path" ] || {
    cat "$scratch/build.log" >&2
    echo "cpu-compare: the $1 benchmark was not built (cargo's output above)" >&2
    exit 1
  }
  echo "$path"
}
tensor_bench=$(bench tensor_bench)
resnet_bench=$(bench resnet_bench)
step_bench=$(bench step_bench)

# The figures of one side of one pair go to $scratch/ROW.ours (or .theirs),
# one line per pair; peak memory to ROW.ours_rss / ROW.theirs_rss in MiB.
record() { # record ROW SIDE OUTPUT KEY: the number after "KEY": in OUTPUT's RESULT line
  local value
  value=$(grep '^RESULT ' <<<"$3" | grep -o "\"$4\": [0-9.]*" | head -1 | grep -o '[0-9.]*$' || true)
  case $value in '' | *[!0-9.]*)
    printf '%s\n' "$3" >&2
    echo "cpu-compare: $1 ($2) printed no figure for \"$4\" (its output above)" >&2
    exit 1
    ;;
  esac
  echo "$value" >>"$scratch/$1.$2"
}
peak_mib() { # peak_mib LOG COMMAND...: runs it, output to LOG, prints its peak RSS
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  local pid=$! peak=0 kib
  while kill -0 "$pid" 2>/dev/null; do
    kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$kib" ] && [ "$kib" -gt "$peak" ] && peak=$kib
    sleep 0.2
  done
  wait "$pid" || {
    cat "$log" >&2
    echo "cpu-compare: '$*' failed" >&2
    exit 1
  }
  echo $((peak / 1024))
}

numpy_gemm='
import json, statistics, time
import numpy as np
out = {}
for n in (256, 512, 1024):
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    for _ in range(3):
        a @ b
    rates = []
    for _ in range(3):
        iters, t0 = 0, time.perf_counter()
        while True:
            a @ b
            iters += 1
            dt = time.perf_counter() - t0
            if dt >= 1.0:
                break
        rates.append(2 * n ** 3 * iters / dt / 1e9)
    out[f"gemm_n{n}"] = statistics.median(rates)
print("RESULT " + json.dumps(out))
'

for pair in $(seq 1 "$pairs"); do
  echo "pair $pair of $pairs..." >&2
  ours=$("$tensor_bench" --gemm)
  theirs=$("$python" -c "$numpy_gemm")
  for n in 256 512 1024; do
    record "gemm$n" ours "$ours" "gemm_n$n"
    record "gemm$n" theirs "$theirs" "gemm_n$n"
  done
  ours=$("$resnet_bench" --only w16 --steps "$steps")
  theirs=$("$python" models/benches/resnet_torch.py --only w16 --threads 2 --steps "$steps")
  record resnet16 ours "$ours" w16_img_s
  record resnet16 theirs "$theirs" w16_img_s
  widths=16
  [ "${W64:-0}" = 1 ] && widths="16 64"
  [ -n "$byol_ref" ] || widths=""
  for w in $widths; do
    rss=$(peak_mib "$scratch/ours.log" "$step_bench" --width "$w" --steps "$steps")
    record "byol$w" ours "$(cat "$scratch/ours.log")" "width${w}_img_s"
    echo "$rss" >>"$scratch/byol$w.ours_rss"
    rss=$(peak_mib "$scratch/theirs.log" "$python" "$byol_ref" --impl plain --width "$w" \
      --threads 2 --steps "$steps" --runs 1)
    record "byol$w" theirs "$(cat "$scratch/theirs.log")" img_per_s_median
    echo "$rss" >>"$scratch/byol$w.theirs_rss"
  done
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
family=$(lscpu | sed -n 's/^CPU family: *//p' | head -1)
model=$(lscpu | sed -n 's/^Model: *//p' | head -1)
simd=avx2
grep -qw avx512f /proc/cpuinfo && simd=avx512
grep -qw avx2 /proc/cpuinfo || simd="neither avx2 nor avx512"
torch=$("$python" -c 'import torch, numpy; print(f"torch {torch.__version__}, numpy {numpy.__version__}")')
echo
echo "CPU: $cpu (family $family, model $model; $simd), 2 threads a side; $torch; $pairs pairs"
python3 - "$scratch" <<'EOF'
import os, statistics, sys

scratch = sys.argv[1]
rows = [
    ("gemm256", "GEMM n=256 vs numpy", "GFLOP/s", 1.0),
    ("gemm512", "GEMM n=512 vs numpy", "GFLOP/s", 1.0),
    ("gemm1024", "GEMM n=1024 vs numpy", "GFLOP/s", 1.0),
    ("resnet16", "ResNet-18 step w16", "img/s", 1.2),
    ("byol16", "BYOL step w16", "img/s", 1.5),
    ("byol64", "BYOL step w64", "img/s", 1.5),
]


def read(name):
    path = os.path.join(scratch, name)
    if not os.path.exists(path):
        return None
    return [float(v) for v in open(path).read().split()]


print(f"{'comparison':22} {'unit':8} {'ours (median, range)':24} {'theirs':24} "
      f"{'ratio per pair':30} {'median':>6}  target")
for key, label, unit, target in rows:
    ours, theirs = read(key + ".ours"), read(key + ".theirs")
    if ours is None or theirs is None:
        continue
    ratios = [o / t for o, t in zip(ours, theirs)]
    med = statistics.median(ratios)
    span = lambda v: f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})"
    per = " ".join(f"{r:.2f}" for r in ratios)
    met = "met" if med >= target else "not met"
    print(f"{label:22} {unit:8} {span(ours):24} {span(theirs):24} {per:30} "
          f"{med:5.2f}x  >= {target}x {met}")
for key, label in (("byol16", "BYOL step w16"), ("byol64", "BYOL step w64")):
    ours, theirs = read(key + ".ours_rss"), read(key + ".theirs_rss")
    if ours and theirs:
        print(f"peak resident memory, {label}: ours {max(ours):.0f} MiB, "
              f"PyTorch {max(theirs):.0f} MiB")
if read("byol16.ours") is None:
    print("BYOL rows skipped: set TORCH_BENCH_DIR to the folder holding byol_step_bench.py")
EOF
