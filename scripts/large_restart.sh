#!/usr/bin/env bash
# A second member for the cloud's model from a warm restart of its own network (a snapshot ensemble, Huang et al.
# 2017): default-large v2's pruned ResNet18 trained again with the `pipeline` recipe (the fine-tune every shipped
# model gets), another seed (data order, augmentation) and a restart of the learning rate at LR (default 0.05, five
# times the fine-tune's) decayed by cosine over EPOCHS (default 8). Took 1.5 h at 2 threads (2026-12-01) instead of the
# 60-epoch run a second seed needs (~10 h here; the one begun was lost with its machine, docs/RESULTS.md).
#   scripts/large_restart.sh [OUT] [LR] [EPOCHS]   # -> OUT (default runs/long/large_restart); resumable: rerun it
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
out=${1:-runs/long/large_restart} lr=${2:-0.05} epochs=${3:-8}
mkdir -p "$out" runs/cache
[ -e "$out/pipeline_views.npz" ] || ln -s "$(pwd)/runs/cache/pipeline_views.npz" "$out/pipeline_views.npz"
nice -n 10 .venv/bin/edgefer train resnet18 --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv --votes-weight 0.25 \
  --recipe pipeline --init default-large --keep-head --seed 1 --lr "$lr" --epochs "$epochs" --out "$out" \
  --threads 2 --auto-resume >> "$out.log" 2>&1
