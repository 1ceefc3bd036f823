#!/usr/bin/env bash
# Builds an edge model the way every shipped `default` is made, from a long run (docs/RESULTS.md, "The shipped
# default model"):
#   1. 5 epochs of the `pipeline` fine-tune (scripts/pipeline_finetune.sh): faces as RetinaFace and the alignment
#      cut them out of photos, so that detection costs little; at the run's own input size;
#   2. logit adjustment, tau 0.25 (edgefer adjust: the rare classes, disgust above all, called more often);
#   3. its confidence quantiles on PublicTest without TTA stored in model.json (edgefer evaluate --calibrate), so
#      that --escalate-rate turns into a threshold on the device.
#   scripts/make_default.sh RUN [OUT] [THREADS]   # RUN: runs/long/RUN/last; OUT: default runs/RUN_default
# Copy OUT to src/edgefer/weights/default to ship it. Resumable: rerun it (the fine-tune continues from its last
# checkpoint; the adjustment and calibration are redone, in seconds).
#   scripts/make_default.sh student_112_20ep    # the 112-px student as it would ship: not shipped (RESULTS.md,
#                                               # "The 112-px student as it would ship")
# v2 was made by the same three steps, run by hand (RESULTS.md, "The shipped default model (v2)").
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013/fer2013.csv.gz
run=$1 out=${2:-runs/$1_default} threads=${3:-2}
scripts/pipeline_finetune.sh "$run" "$threads"
.venv/bin/edgefer adjust --checkpoint "runs/long/${run}_pipeline/last" --tau 0.25 --data $D --out "$out"
.venv/bin/edgefer evaluate --checkpoint "$out" --data $D --tta none --calibrate --threads "$threads" \
  > "runs/long/${run}_calibration.log"
