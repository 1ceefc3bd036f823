#!/usr/bin/env bash
# Table 1's MobileNetV2 row (the paper's): the same `strong` recipe, 60 epochs, 96 px, one thread.
# Waits for queue A of scripts/long_runs.sh (shufflenet_asp_sfp, then shufflenet) so that at most two runs share the
# two cores until then. Resumable: rerun this script.
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
done_60() { [ -f "runs/long/$1/log.csv" ] && [ "$(tail -1 "runs/long/$1/log.csv" | cut -d, -f1)" = "60" ]; }
until done_60 shufflenet_asp_sfp && done_60 shufflenet; do sleep 600; done
out=runs/long/mobilenet_v2
resume=""
[ -f "$out/last/train_state.pt" ] || [ -f "$out/partial/train_state.pt" ] && resume="--resume"
nice -n 10 .venv/bin/edgefer train mobilenet_v2 --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe strong --out $out --threads 1 $resume >> runs/long/mobilenet_v2.log 2>&1
