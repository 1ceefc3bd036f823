#!/usr/bin/env bash
# The edge model fine-tuned at another input size: the shipped default v2 (shufflenet_asp_sfp at 96 px) trained 10
# (or EPOCHS) more epochs at SIZE px with the `distill` recipe from the cloud's model (default-large, `fixed`
# teacher targets), at a peak lr of 0.01. The same start, epochs and lr as the student of ResNet18 @ 96 (RESULTS,
# "The distilled student"): at 112 px, does the student's resolution, not its teacher, hold it near 67%? At 96 px,
# the control: the same teacher at the same size. Resumable: rerun it; SIGTERM saves its place.
#   nohup scripts/student_at.sh SIZE [THREADS] [EPOCHS] > /dev/null 2>&1 &
#   -> runs/long/student_SIZE (10 epochs) or runs/long/student_SIZE_EPOCHSep
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
size=$1 threads=${2:-2} epochs=${3:-10}
out=runs/long/student_$size
[ "$epochs" = 10 ] || out=${out}_${epochs}ep
mkdir -p "$out"
nice -n 10 .venv/bin/edgefer train shufflenet_asp_sfp --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe distill --teacher default-large --teacher-mode fixed --init default --keep-head --input-size "$size" \
  --lr 0.01 --epochs "$epochs" --out "$out" --threads "$threads" --auto-resume >> "$out.log" 2>&1
