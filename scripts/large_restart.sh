#!/usr/bin/env bash
# A second member for the cloud's model from a warm restart of its own network (a snapshot ensemble, Huang et al.
# 2017): default-large v2's pruned ResNet18 trained again with the `pipeline` recipe (scripts/pipeline_finetune.sh,
# the fine-tune every shipped model gets), another seed (data order, augmentation) and a restart of the learning
# rate at LR (default 0.05, five times the fine-tune's) decayed by cosine over EPOCHS (default 8). Took 1.5 h at 2
# threads (2026-12-01) instead of the 60-epoch run a second seed needs (~10 h here; the one begun was lost with its
# machine, docs/RESULTS.md).
#   scripts/large_restart.sh [LR] [EPOCHS]   # -> runs/long/large_restart_pipeline; resumable: rerun it
set -e
cd "$(dirname "$0")/.."
scripts/pipeline_finetune.sh large_restart 2 default-large --seed 1 --lr "${1:-0.05}" --epochs "${2:-8}"
