#!/usr/bin/env bash
# The two-view pipeline of a streamed folder, ours beside torchvision's, on
# the same generated JPEGs (500x375 and 2000x1500), views of 96 and 224
# pixels, 2 threads each (ours: rayon; torchvision: 2 DataLoader workers).
# torchvision's side needs `pip install torch torchvision pillow` (not part
# of the project; skipped with a note when missing).
#   scripts/bench-stream.sh [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-256}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
lscpu | grep 'Model name' | sed 's/ \+/ /g'
RAYON_NUM_THREADS=2 cargo bench -q -p augment --bench stream -- "$images" --dir "$dir" 2>/dev/null
if python3 -c 'import torchvision' 2>/dev/null; then
  for photos in 500x375 2000x1500; do
    for size in 96 224; do
      echo "$photos: $(python3 scripts/bench-stream.py "$dir/$photos" "$size")"
    done
  done
else
  echo "torchvision is not installed: its side was not measured"
fi
