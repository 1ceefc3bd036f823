#!/usr/bin/env bash
# What follows the long runs, started beside them so that it begins the moment they end:
#   1. wait for scripts/long_runs.sh (all four 60-epoch runs) to finish;
#   2. score each finished run and the candidate ensembles on PublicTest (logs in runs/long/after/);
#   3. distil the edge model from the three large runs (resumable: rerun this script).
# The teacher's members can be re-chosen by the cross-dataset table afterwards; this is a head start.
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
A=runs/long/after
mkdir -p $A
while pgrep -f "scripts/long_runs.sh|runs/long/run.sh" > /dev/null; do sleep 600; done
for run in shufflenet_asp_sfp shufflenet resnet18_48 mini_xception_48; do
  [ "$(tail -1 runs/long/$run/log.csv | cut -d, -f1)" = "60" ] || { echo "$run has not finished"; exit 1; }
done
for run in shufflenet_asp_sfp shufflenet resnet18_48 mini_xception_48; do
  [ -f $A/$run.json ] || .venv/bin/edgefer evaluate --checkpoint runs/long/$run/last --data $D/fer2013.csv.gz \
    --tta flip --json > $A/$run.json
done
[ -d runs/large3 ] || .venv/bin/edgefer ensemble runs/long/{resnet18_48,shufflenet_asp_sfp,shufflenet}/last \
  --out runs/large3 --data $D/fer2013.csv.gz > $A/large3.log 2>&1
[ -d runs/large4 ] || .venv/bin/edgefer ensemble runs/long/{resnet18_48,shufflenet_asp_sfp,shufflenet,mini_xception_48}/last \
  --out runs/large4 --data $D/fer2013.csv.gz > $A/large4.log 2>&1
resume=""
[ -f runs/long/student/last/train_state.pt ] && resume="--resume"
nice -n 10 .venv/bin/edgefer train shufflenet_asp_sfp --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe distill --teacher runs/long/resnet18_48/last,runs/long/shufflenet_asp_sfp/last,runs/long/shufflenet/last \
  --out runs/long/student --threads 2 $resume >> runs/long/student.log 2>&1
