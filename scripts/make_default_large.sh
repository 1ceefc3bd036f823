#!/usr/bin/env bash
# Builds the cloud's model, default-large, into src/edgefer/weights/default-large (git-ignored: 50 MB, over the
# repository's 10 MB limit for a tracked file): ResNet18 @ 48 after its pipeline fine-tune + the edge model v2,
# mirrored (docs/RESULTS.md, "The cloud's model"). Needs runs/long/resnet18_48_pipeline (scripts/long_runs.sh, then
# scripts/pipeline_finetune.sh resnet18_48).
set -e
cd "$(dirname "$0")/.."
out=src/edgefer/weights/default-large
.venv/bin/edgefer ensemble runs/long/resnet18_48_pipeline/last default --out "$out" \
  --data ../shared/data/fer2013/fer2013.csv.gz
