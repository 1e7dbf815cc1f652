#!/usr/bin/env bash
# Images/s of `byol pretrain` as 1, 2 and 4 processes on this machine, for
# ResNet-18 widths 16 and 64 on the embedded Fashion-MNIST subset, with
# rank 0's time in collectives. Strong scaling: the same global batch for
# every P. Weak scaling: the same batch per process. Ranks share the cores:
# RAYON_NUM_THREADS = cores / P (at least 1), as `byol` sets by default.
# Needs the `mpi` build:
#   cargo build --release -p cli --features mpi && scripts/bench-mpi.sh [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
byol=target/release/byol
images=${1:-512}
cores=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 BYOL_DEVICE=cpu
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

run() { # width P global-batch
  local width=$1 p=$2 batch=$3 threads=$(( cores / $2 ))
  [ "$threads" -ge 1 ] || threads=1
  local out="$scratch/w$1-p$2-b$3-$RANDOM" args
  args=(pretrain --limit "$images" --epochs 1 --batch-size "$batch" --width "$width"
        --knn-every 0 --quiet --out "$out")
  local log
  if [ "$p" -eq 1 ]; then
    log=$(RAYON_NUM_THREADS=$threads "$byol" "${args[@]}" 2>&1)
  else
    log=$(RAYON_NUM_THREADS=$threads mpirun -n "$p" --oversubscribe --bind-to none \
          "$byol" "${args[@]}" 2>&1)
  fi
  local rate comm
  rate=$(grep -o '[0-9.]* img/s' <<<"$log" | tail -1)
  comm=$(grep -o 'of [0-9.]* s training.*' <<<"$log" || echo "-")
  printf '| %s | %s | %s | %s | %s | %s |\n' "$width" "$p" "$threads" "$batch" "$rate" "$comm"
}

echo "$(lscpu | grep 'Model name' | sed 's/ \+/ /g'), $cores cores; $images images, 1 epoch"
echo
echo "| width | processes | threads each | global batch | images/s | rank 0 in collectives |"
echo "| --- | --- | --- | --- | --- | --- |"
for width in 16 64; do
  for p in 1 2 4; do run "$width" "$p" 64; done            # strong scaling
  for p in 2 4; do run "$width" "$p" $(( 32 * p )); done   # weak scaling (P=1 is batch 32)
  run "$width" 1 32
done
