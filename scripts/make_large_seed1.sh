#!/usr/bin/env bash
# A two-seed cloud model from what this machine can train in a working session (docs/RESULTS.md, "A second seed
# in bfloat16"): default-large v2 (seed 0, as shipped: pruned, `pipeline`-tuned, INT8) beside a second ResNet18 @ 96
# of seed 1 (`scripts/long_runs.sh e`: 40 epochs under bfloat16 autocast), that one pruned and tuned as default-large
# was (12.5% of its basic blocks' inner channels, 5 `pipeline` epochs, here in bfloat16), then both joined,
# mirrored, at INT4 (2 x 5 MB: two members at INT8 would not fit the 10 MB a tracked file may have). Written to
# OUT, not into the package: what ships is decided by measurement (benchmarks/cross_dataset.py,
# benchmarks/paired_test.py against default-large). Resumable: rerun it.
#   scripts/make_large_seed1.sh [OUT] [SEED1]   # defaults: runs/large_x2s_int4, runs/long/resnet18_96_seed1/last
set -e
cd "$(dirname "$0")/.."
out=${1:-runs/large_x2s_int4} seed1=${2:-runs/long/resnet18_96_seed1/last}
source scripts/prune_pipeline.sh
prune_and_finetune "$seed1" runs/r18s1p0.125 r18s1p125 --bf16
[ -f "$out/model.json" ] || .venv/bin/edgefer ensemble default-large runs/long/r18s1p125_pipeline/last --out "$out" \
  --weights int4 --data ../shared/data/fer2013/fer2013.csv.gz
.venv/bin/python - "$out" <<'PY'
import sys

from edgefer.loading import update_meta

update_meta(sys.argv[1], members=[
    "default-large v2 (seed 0): ResNet18 @ 96 px, recipe strong 60 epochs (GPU), 12.5% of its basic blocks' "
    "channels pruned, pipeline 5 epochs",
    "resnet18_96_seed1: ResNet18 @ 96 px, recipe strong 40 epochs in bfloat16 (CPU), 12.5% of its basic blocks' "
    "channels pruned, pipeline 5 epochs in bfloat16",
])
PY
