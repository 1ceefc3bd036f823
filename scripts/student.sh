#!/usr/bin/env bash
# The distilled edge model, from scratch: shufflenet_asp_sfp (the paper's architecture, 1.27 M parameters) with the
# `distill` recipe (the `strong` recipe, 60 epochs at 96 px, plus the teacher's soft targets: alpha 0.7, T = 4,
# online, so the teacher sees each augmented view) from the cloud's model, default-large (ResNet18 @ 96, mirrored;
# tracked, so the run can start again on any machine). About 4-5 minutes an epoch at 2 threads on machine B, so it
# runs over several working sessions. Resumable: rerun it (from runs/long/student_large/last or partial/).
#   nohup scripts/student.sh [THREADS] > /dev/null 2>&1 &
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
threads=${1:-2}
out=runs/long/student_large
mkdir -p "$out"
resume=""
[ -f "$out/last/train_state.pt" ] || [ -f "$out/partial/train_state.pt" ] && resume="--resume"
nice -n 10 .venv/bin/edgefer train shufflenet_asp_sfp --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe distill --teacher default-large --out "$out" --threads "$threads" $resume >> "$out.log" 2>&1
