#!/usr/bin/env bash
# The recipe search of docs/results.md: short BYOL studies on the full
# Fashion-MNIST, each the 20-epoch recipe cut to a few epochs with one
# setting changed, so their learning curves can be compared.
#
#   scripts/recipe-search.sh [trial ...]     # default: every trial below
#
# Each trial is a `byol study` folder under runs/recipe/ (its log beside
# it): run the script again to continue a stopped search; finished trials
# are only re-read. Run it in the background under nice; one 5-epoch trial
# of the width-16 network takes about half an hour on 2 cores, of width 32
# about four times that (five epochs of width 32 cost about what twenty of
# width 16 do: the issue's budget).
set -euo pipefail
cd "$(dirname "$0")/.."

data=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
epochs=${EPOCHS:-5}
byol=${BYOL:-target/release/byol}

# The base: the 20-epoch recipe's settings (docs/results.md), flag -> value.
declare -A base=(
    [--epochs]=$epochs [--width]=16 [--hidden]=4096 [--projection]=256
    [--batch-size]=256 [--optimizer]=adam [--lr]=0.001 [--weight-decay]=0
    [--lr-schedule]=cosine [--warmup-epochs]=1 [--tau]=0.9
    [--tau-schedule]=constant [--augment]=cifar [--brightness]=multiplicative
    [--min-crop]=0.2 [--labels-per-class]=10 [--draws]=3
)

# name: the settings that differ from the base, as flag value pairs.
declare -A trials=(
    [base]=""
    [width-32]="--width 32"
    [adam-lr2e-3]="--lr 0.002"
    [min-crop-0.08]="--min-crop 0.08"
    [lars]="--optimizer lars --lr 0.2 --weight-decay 1.5e-6"
    [batch-128]="--batch-size 128"
    [heads-1024-128]="--hidden 1024 --projection 128"
)
order=(base width-32 adam-lr2e-3 lars min-crop-0.08 heads-1024-128 batch-128)

[ $# -gt 0 ] && order=("$@")
mkdir -p runs/recipe
for name in "${order[@]}"; do
    [ -v "trials[$name]" ] || { echo "no trial named '$name' (have: ${!trials[*]})" >&2; exit 2; }
    declare -A settings=()
    for flag in "${!base[@]}"; do settings[$flag]=${base[$flag]}; done
    read -ra changed <<<"${trials[$name]}"
    for ((i = 0; i < ${#changed[@]}; i += 2)); do settings[${changed[i]}]=${changed[i + 1]}; done
    args=(--dataset fashion-mnist --data "$data" --target-copy --no-ablation)
    for flag in "${!settings[@]}"; do args+=("$flag" "${settings[$flag]}"); done
    unset settings
    out=runs/recipe/$name-e$epochs
    "$byol" study "${args[@]}" --out "$out" >>"$out.log" 2>&1
    echo "$name: $out/results.md"
done
