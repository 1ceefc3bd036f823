#!/usr/bin/env bash
# The `pipeline` fine-tune of a long run: 5 epochs on FER2013 faces as they are and as the photo pipeline
# (RetinaFace + alignment) cuts them out of canvases, so that faces found in photos lose little (RESULTS.md,
# "End-to-end accuracy"). Keeps the run's FER+ votes in the targets (the strong recipe's weight, 0.25).
#   scripts/pipeline_finetune.sh RUN [THREADS] [CHECKPOINT] [TRAIN_ARGS...]   # CHECKPOINT (default runs/long/RUN/last)
#   -> runs/long/RUN_pipeline (any architecture, pruned or not: --init takes it from the checkpoint, e.g.
#   RUN=resnet18_48); TRAIN_ARGS go to edgefer train (e.g. --seed 1 --lr 0.05 --epochs 8)
# The detector's cut-outs do not depend on the model: made once into runs/cache/pipeline_views.npz (~10 min at
# 2 threads) and shared. Resumable: rerun it.
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
run=$1 threads=${2:-2} from=${3:-runs/long/$1/last}
out=runs/long/${run}_pipeline
mkdir -p "$out" runs/cache
[ -e "$out/pipeline_views.npz" ] || ln -s "$(pwd)/runs/cache/pipeline_views.npz" "$out/pipeline_views.npz"
nice -n 10 .venv/bin/edgefer train shufflenet_asp_sfp --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --votes-weight 0.25 --recipe pipeline --init "$from" --keep-head --out "$out" \
  --threads "$threads" --auto-resume "${@:4}" >> "runs/long/${run}_pipeline.log" 2>&1
