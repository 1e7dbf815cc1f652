#!/usr/bin/env bash
# The few-label comparison (issue 18; the paper's Table 2 question) for one
# pretraining run, on its own labelled data set: with K = 1, 10 and 100
# labelled train images per class (several seeded draws each),
#   logistic    logistic regression on the frozen BYOL features (L-BFGS)
#   fine-tuned  the BYOL encoder and a linear head trained on the K·classes images
#   scratch     the same architecture from random weights, same labels and augmentations
#   pixels      logistic regression on the normalised pixels
# each scored on the whole test split. Results go to FOLDER/<row>-<K>.json; a
# finished cell is not redone, so an interrupted comparison continues.
#
# Usage: scripts/few-labels.sh RUN [FOLDER] [DRAWS]   (default RUN/few-labels 5)
# FINETUNE_EPOCHS (default 30) sets the passes of fine-tuning and of training from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1
dir=${2:-$run/few-labels}
draws=${3:-5}
byol=${BYOL:-target/release/byol}
epochs=${FINETUNE_EPOCHS:-30}
mkdir -p "$dir"
cell() { # cell NAME command...: runs unless NAME.json exists; a failure is reported, not fatal
  local out="$dir/$1.json"; shift
  if [ ! -e "$out" ]; then
    echo "== $out" >&2
    nice "$@" --json "$out" >&2 || echo "failed (left out of the table): $*" >&2
  fi
}
for k in 1 10 100; do
  cell "logistic-$k" $byol eval --checkpoint "$run" --method logistic --labels-per-class $k --draws $draws
  cell "pixels-$k" $byol eval --pixels --checkpoint "$run" --method logistic --labels-per-class $k --draws $draws
  cell "finetuned-$k" $byol finetune --checkpoint "$run" --labels-per-class $k --draws $draws --epochs $epochs
  cell "scratch-$k" $byol finetune --checkpoint "$run" --labels-per-class $k --draws $draws --epochs $epochs --from-scratch
done
python3 - "$dir" <<'PY'
import json, os, sys, statistics
d = sys.argv[1]
rows = [("logistic", "logistic regression on BYOL features"), ("finetuned", "BYOL fine-tuned"),
        ("scratch", "same network from scratch"), ("pixels", "logistic regression on pixels")]
print("| labels per class | " + " | ".join(name for _, name in rows) + " |")
print("|---|" + "---|" * len(rows))
for k in (1, 10, 100):
    cells = []
    for key, _ in rows:
        path = os.path.join(d, f"{key}-{k}.json")
        if not os.path.exists(path):
            cells.append("—"); continue
        v = json.load(open(path))
        accs = v.get("accuracies") or [r["test_accuracy"] for r in v["draws"]]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        cells.append(f"{100 * statistics.mean(accs):.1f} ± {100 * sd:.1f}")
    print(f"| {k} | " + " | ".join(cells) + " |")
PY
