#!/usr/bin/env bash
# The edge model fine-tuned at a larger input: the shipped default (v2, shufflenet_asp_sfp at 96 px) trained 10
# more epochs at 112 px with the `distill` recipe from the cloud's model (default-large, `fixed`
# teacher targets), at a peak lr of 0.01. The same start, epochs and lr as the student of ResNet18 @ 96
# (RESULTS, "The distilled student"), at 112 px instead of 96: does the student's resolution, not its teacher,
# hold it near 67%? Resumable: rerun it (from runs/long/student_112/last or partial/); SIGTERM saves its place.
# EPOCHS other than 10 run into runs/long/student_112_<EPOCHS>ep.
#   nohup scripts/student_112.sh [THREADS] [EPOCHS] > /dev/null 2>&1 &
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
threads=${1:-2}
epochs=${2:-10}
out=runs/long/student_112
[ "$epochs" = 10 ] || out=${out}_${epochs}ep
mkdir -p "$out"
nice -n 10 .venv/bin/edgefer train shufflenet_asp_sfp --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe distill --teacher default-large --teacher-mode fixed --init default --keep-head --input-size 112 \
  --lr 0.01 --epochs "$epochs" --out "$out" --threads "$threads" --auto-resume >> "$out.log" 2>&1
