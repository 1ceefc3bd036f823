#!/usr/bin/env bash
# Builds the cloud's model, default-large, into src/edgefer/weights/default-large (tracked: 7.9 MB of float16
# weights, under the repository's 10 MB limit for a file): three ShuffleNetV2 + ASP + SFP models, each after the
# `pipeline` fine-tune, averaged and mirrored (docs/RESULTS.md, "The cloud's model"):
#   - the edge model v2 itself (src/edgefer/weights/default);
#   - runs/long/student_ft_pipeline: the 60-epoch strong run + 10 epochs of distillation + 5 of pipeline
#     (scripts/long_runs.sh, then scripts/student_ft.sh);
#   - runs/long/default_v1: the previous edge model v1 (git show 74437e3:src/edgefer/weights/default/...;
#     scripts/after_long_runs.sh recreates it).
# The stronger ResNet18 @ 48 + v2 (67.9%, 50 MB) is built by `--resnet18` into runs/default_large_r18v2 (not
# tracked: over the limit even at float16).
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013/fer2013.csv.gz
if [ "$1" = "--resnet18" ]; then
  .venv/bin/edgefer ensemble runs/long/resnet18_48_pipeline/last default --out runs/default_large_r18v2 --data $D
  exit
fi
out=src/edgefer/weights/default-large
.venv/bin/edgefer ensemble default runs/long/student_ft_pipeline/last runs/long/default_v1 --out "$out" \
  --weights float16 --data $D
# name the members by what they are, not by paths that only exist on the machine that built it
.venv/bin/python - "$out" "$(git log -1 --format=%h -- src/edgefer/weights/default/model.safetensors)" <<'EOF'
import sys

from edgefer.loading import update_meta

out, v2_commit = sys.argv[1:]
update_meta(out, members=[
    f"v2: the edge model (src/edgefer/weights/default, commit {v2_commit})",
    "student_ft_pipeline: ShuffleNetV2+ASP+SFP, recipe strong 60 epochs, distill 10, pipeline 5",
    "v1: the previous edge model (src/edgefer/weights/default at commit 74437e3)",
])
EOF
