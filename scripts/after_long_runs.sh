#!/usr/bin/env bash
# The distilled edge model, started beside the long runs so that it begins the moment its teacher exists:
#   1. wait for the teacher's two members of scripts/long_runs.sh (resnet18_48 and shufflenet_asp_sfp, 60 epochs);
#   2. score each and their ensemble with the edge model v1 (the cloud's candidate) on PublicTest, and the cloud's
#      candidates on the cross-dataset table (logs in runs/long/after/);
#   3. distil shufflenet_asp_sfp from those three (runs/long/student), at normal priority and one thread, so that it
#      takes the cores before the Table 1 runs (which run at nice 10). Resumable: rerun this script.
# The teacher's members can be re-chosen by the cross-dataset table afterwards; this is a head start.
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
A=runs/long/after
done_60() { [ -f "runs/long/$1/log.csv" ] && [ "$(tail -1 "runs/long/$1/log.csv" | cut -d, -f1)" = "60" ]; }
until done_60 resnet18_48 && done_60 shufflenet_asp_sfp; do sleep 600; done
mkdir -p $A
for run in shufflenet_asp_sfp resnet18_48; do
  [ -f $A/$run.json ] || .venv/bin/edgefer evaluate --checkpoint runs/long/$run/last --data $D/fer2013.csv.gz \
    --tta flip --threads 1 --json > $A/$run.json
done
# The edge model v1 (shipped until 2026-11-30) joins the teacher: with the strong run it scores 67.8% where the
# strong run alone scores 66.9% (RESULTS.md, "The cloud's model"), and it is trained independently of both. It is
# taken from the commit that shipped it.
V1=runs/long/default_v1
for f in model.json model.safetensors; do
  [ -f $V1/$f ] || { mkdir -p $V1 && git show 74437e3:src/edgefer/weights/default/$f > $V1/$f; }
done
[ -d runs/large2 ] || .venv/bin/edgefer ensemble runs/long/{resnet18_48,shufflenet_asp_sfp}/last $V1 \
  --out runs/large2 --data $D/fer2013.csv.gz > $A/large2.log 2>&1
# The cloud's candidates on every set of the cross-dataset table (each member scored once, ensembles from the cache).
R=runs/long/resnet18_48/last S=runs/long/shufflenet_asp_sfp/last
[ -f $A/cloud_candidates.json ] || .venv/bin/python benchmarks/cross_dataset.py v2=default r18=$R "r18+v2=$R+default" \
  "r18+strong+v1=$R+$S+$V1" "r18+v2+v1=$R+default+$V1" --threads 1 --json $A/cloud_candidates.json > $A/cloud_candidates.txt 2>&1
out=runs/long/student
.venv/bin/edgefer train shufflenet_asp_sfp --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe distill --teacher runs/long/resnet18_48/last,runs/long/shufflenet_asp_sfp/last,$V1 \
  --out $out --threads 1 --auto-resume >> runs/long/student.log 2>&1
