#!/usr/bin/env bash
# The distilled edge model, from scratch: shufflenet_asp_sfp (the paper's architecture, 1.27 M parameters) with the
# `distill` recipe (the `strong` recipe, 60 epochs at 96 px, plus the teacher's soft targets: alpha 0.7, T = 4) from
# the cloud's model, default-large (ResNet18 @ 96, mirrored; tracked, so the run can start again on any machine).
# The teacher is `fixed`: its targets are computed once, on each face's centre crop and mirror image. `online` (the
# teacher on every augmented view) cost 687 s for one epoch at 2 threads on machine B with this teacher (a short
# scoring job beside it), some 11 hours for 60 epochs; `fixed`: 13 minutes once for the targets, then 117-168 s an
# epoch at 2 threads alone (two sessions, the second on a slower day), 2-2.5 hours. Resumable: rerun it (from
# runs/long/student_large/last or partial/).
#   nohup scripts/student.sh [THREADS] > /dev/null 2>&1 &
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
threads=${1:-2}
out=runs/long/student_large
mkdir -p "$out"
nice -n 10 .venv/bin/edgefer train shufflenet_asp_sfp --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe distill --teacher default-large --teacher-mode fixed --out "$out" --threads "$threads" --auto-resume >> "$out.log" 2>&1
