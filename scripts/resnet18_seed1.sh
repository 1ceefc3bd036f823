#!/usr/bin/env bash
# ResNet18 @ 96, `strong`, seed 1: the second seed for a two-seed cloud ensemble (the accuracy issue's 71%),
# continued here from the 24 of 60 epochs a GPU machine trained (runs/gpu2/resnet18_96_seed1: its weights and
# log came back, its optimizer state did not; scripts/continue_gpu_run.py writes the state to resume from, with
# fresh momentum). About 10 min an epoch at 2 threads on this machine (RESULTS.md, "Step time"): 6 hours for the
# 36 left. Resumable: rerun it.
#   nohup scripts/resnet18_seed1.sh [THREADS] > /dev/null 2>&1 &
set -e
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
threads=${1:-2}
out=runs/long/resnet18_96_seed1
[ -d "$out/last" ] || .venv/bin/python scripts/continue_gpu_run.py runs/gpu2/resnet18_96_seed1 "$out" --seed 1
nice -n 10 .venv/bin/edgefer train resnet18 --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe strong --seed 1 --out "$out" --threads "$threads" --resume >> "$out.log" 2>&1
