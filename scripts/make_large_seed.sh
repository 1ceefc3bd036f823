#!/usr/bin/env bash
# A two-seed cloud model from what this machine can train in a working session (docs/RESULTS.md, "A second seed
# in bfloat16"): default-large v2 (seed 0, as shipped: pruned, `pipeline`-tuned, INT8) beside a ResNet18 @ 96 of
# another seed trained here under bfloat16 autocast (`scripts/long_runs.sh e`: seed 1, 40 epochs; `f`: seed 2,
# 50 epochs), that one pruned and tuned as default-large was (12.5% of its basic blocks' inner channels, 5
# `pipeline` epochs, here in bfloat16), then both joined, mirrored, at INT4 (2 x 5 MB: two members at INT8 would
# not fit the 10 MB a tracked file may have). Written to OUT, not into the package: what ships is decided by
# measurement (benchmarks/cross_dataset.py, benchmarks/paired_test.py against default-large). Resumable: rerun it.
#   scripts/make_large_seed.sh SEED [OUT]   # from runs/long/resnet18_96_seed$SEED/last; OUT: runs/large_x2s${SEED}_int4
set -e
cd "$(dirname "$0")/.."
seed=${1:?usage: scripts/make_large_seed.sh SEED [OUT]}
out=${2:-runs/large_x2s${seed}_int4} run=runs/long/resnet18_96_seed$seed/last
source scripts/prune_pipeline.sh
prune_and_finetune "$run" "runs/r18s${seed}p0.125" "r18s${seed}p125" --bf16
[ -f "$out/model.json" ] || .venv/bin/edgefer ensemble default-large "runs/long/r18s${seed}p125_pipeline/last" \
  --out "$out" --weights int4 --data ../shared/data/fer2013/fer2013.csv.gz
.venv/bin/python - "$out" "$run" "$seed" <<'PY'
import sys

from edgefer.loading import read_meta, update_meta

out, run, seed = sys.argv[1:]
epochs = read_meta(run)["metrics"]["epoch"]
update_meta(out, members=[
    "default-large v2 (seed 0): ResNet18 @ 96 px, recipe strong 60 epochs (GPU), 12.5% of its basic blocks' "
    "channels pruned, pipeline 5 epochs",
    f"resnet18_96_seed{seed}: ResNet18 @ 96 px, recipe strong {epochs} epochs in bfloat16 (CPU), 12.5% of its "
    "basic blocks' channels pruned, pipeline 5 epochs in bfloat16",
])
PY
