#!/usr/bin/env bash
# Trajectories at the PyTorch reference run's scale (ResNet-18 width 16,
# heads 4096/256, batch 256, Adam 1e-3, tau 0.99, constant), in a run
# folder that resumes (a finished piece is not redone):
#
#   A  PyTorch from PyTorch's initial networks on the reference views
#   B  ours from the same networks on the same views        (B vs A: the step)
#   C  ours from our initial networks on the same views      (C vs B: the start)
#   D  ours from PyTorch's networks on our trainer's views   (D vs B: the views)
#
# Usage: scripts/trajectory-scale.sh [FOLDER] [STEPS]   (default runs/trajectory 300)
# Needs a Python with torch, numpy and safetensors (PYTHON, default python3)
# and Fashion-MNIST. Prints the comparisons at the end; docs/trajectory.md
# reads them.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-runs/trajectory}
steps=${2:-300}
py=${PYTHON:-python3}
mkdir -p "$dir"
cargo build --release -q -p byol --example trajectory
rs=target/release/examples/trajectory
once() { # once OUTPUT command...: runs the command unless OUTPUT exists
  local out=$1; shift
  if [ ! -e "$out" ]; then echo "== $out" >&2; nice "$@"; fi
}
once "$dir/views_torch.safetensors" $py scripts/trajectory.py views --batches 150 --batch 256 --out "$dir/views_torch.safetensors"
once "$dir/views_ours.safetensors" $rs views --batches 150 --batch 256 --augment cifar --min-crop 0.2 --out "$dir/views_ours.safetensors"
once "$dir/init_torch.safetensors" $py scripts/trajectory.py init --width 16 --hidden 4096 --projection 256 --target copy --out "$dir/init_torch.safetensors"
once "$dir/init_ours.safetensors" $rs init --width 16 --hidden 4096 --projection 256 --target random --out "$dir/init_ours.safetensors"
once "$dir/A.csv" $py scripts/trajectory.py run --state "$dir/init_torch.safetensors" --views "$dir/views_torch.safetensors" --steps "$steps" --losses "$dir/A.csv" --out "$dir/A.safetensors"
once "$dir/B.csv" $rs run --state "$dir/init_torch.safetensors" --views "$dir/views_torch.safetensors" --steps "$steps" --losses "$dir/B.csv" --out "$dir/B.safetensors"
once "$dir/C.csv" $rs run --state "$dir/init_ours.safetensors" --views "$dir/views_torch.safetensors" --steps "$steps" --losses "$dir/C.csv"
once "$dir/D.csv" $rs run --state "$dir/init_torch.safetensors" --views "$dir/views_ours.safetensors" --steps "$steps" --losses "$dir/D.csv"
echo "### B (ours) against A (PyTorch): same networks, same views"
$py scripts/trajectory.py compare --losses "$dir/A.csv" "$dir/B.csv" --states "$dir/A.safetensors" "$dir/B.safetensors" --init "$dir/init_torch.safetensors"
echo "### C (our initial networks) against B (PyTorch's), both ours"
$py scripts/trajectory.py compare --losses "$dir/B.csv" "$dir/C.csv"
echo "### D (our views) against B (PyTorch's views), both ours"
$py scripts/trajectory.py compare --losses "$dir/B.csv" "$dir/D.csv"
