#!/usr/bin/env bash
# A shippable two-seed cloud model, for the accuracy issue's 71% (docs/RESULTS.md, "The cloud's model, v2"): the
# two ResNet18 @ 96 runs (seed 0, runs/gpu/resnet18_96; seed 1, runs/long/resnet18_96_seed1), each with 12.5% of its
# basic blocks' inner channels pruned and 5 `pipeline` epochs, as default-large v2 was made, then one mirrored
# ensemble stored at INT4 per output channel: 2 x 5.0 MB, under the 10 MB a tracked file may have (two members at
# INT8 would be 19.7 MB). Written to OUT (default runs/large_x2_int4), not into the package: what ships is decided by
# the measurements scripts/after_seed1.sh takes. Seed 0's steps are default-large's (scripts/make_default_large.sh)
# and return at once when done. About 45 minutes at 2 threads for seed 1's pruning and fine-tune. Resumable: rerun it.
#   scripts/make_large_two_seeds.sh [OUT]
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013/fer2013.csv.gz
out=${1:-runs/large_x2_int4}
source scripts/prune_pipeline.sh
prune_and_finetune runs/gpu/resnet18_96/last runs/r18p0.125 r18p125
prune_and_finetune runs/long/resnet18_96_seed1/last runs/r18s1p0.125 r18s1p125
.venv/bin/edgefer ensemble runs/long/r18p125_pipeline/last runs/long/r18s1p125_pipeline/last --out "$out" \
  --weights int4 --data $D
.venv/bin/python - "$out" <<'PY'
import sys

from edgefer.loading import update_meta

update_meta(sys.argv[1], members=[
    f"resnet18_96 seed {seed}: ResNet18 @ 96 px, recipe strong 60 epochs ({where}), 12.5% of its basic blocks' "
    "channels pruned, pipeline 5 epochs"
    for seed, where in ((0, "GPU"), (1, "24 on a GPU, 36 on the CPU"))
])
PY
