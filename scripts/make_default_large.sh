#!/usr/bin/env bash
# Builds the cloud's model, default-large, into src/edgefer/weights/default-large (tracked; a tracked file may have
# 10 MB): ResNet18 at 96 px, the strongest model trained here (docs/RESULTS.md, "The cloud's model, v2"):
#   1. runs/gpu/resnet18_96: the `strong` recipe, 60 epochs, trained on a GPU machine (scripts/gpu/runs.sh; 70.27%);
#   2. 12.5% of the inner channels of every basic block pruned (11.2 M -> 9.8 M parameters; edgefer prune);
#   3. 5 epochs of the `pipeline` fine-tune (scripts/pipeline_finetune.sh), as for every model that ships;
#   4. mirrored inside the model (flip TTA in the cloud) and stored as INT8 per output channel (edgefer ensemble
#      --weights int8), 9.9 MB; it loads as float32.
# The first default-large (v2 + student_ft_pipeline + v1, three ShuffleNetV2 + ASP + SFP, float16, 7.9 MB) is in git:
#   git show c41857d:src/edgefer/weights/default-large/model.safetensors (and model.json).
# Rerunning it resumes: the pruning is skipped once done, the fine-tune continues from its last checkpoint.
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013/fer2013.csv.gz
source scripts/prune_pipeline.sh
prune_and_finetune runs/gpu/resnet18_96/last runs/r18p0.125 r18p125
out=src/edgefer/weights/default-large
.venv/bin/edgefer ensemble runs/long/r18p125_pipeline/last --out "$out" --weights int8 --data $D
# name what it was made of, not paths that only exist on the machine that built it
.venv/bin/python - "$out" <<'EOF'
import sys

from edgefer.loading import update_meta

update_meta(sys.argv[1], members=[
    "resnet18_96: ResNet18 @ 96 px, recipe strong 60 epochs (GPU), 12.5% of its basic blocks' channels pruned, "
    "pipeline 5 epochs",
])
EOF
