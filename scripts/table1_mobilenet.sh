#!/usr/bin/env bash
# Queue B's tail: the mini-Xception run's `pipeline` fine-tune (a member candidate for the cloud's ensemble), then
# Table 1's MobileNetV2 row (the paper's): the same `strong` recipe, 60 epochs, 96 px, one thread.
# Waits for queue B of scripts/long_runs.sh (resnet18_48, then mini_xception_48) so that at most two runs share the
# two cores. Resumable: rerun this script.
#   nohup scripts/table1_mobilenet.sh > runs/long/queue_c.out 2>&1 &
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
done_n() { [ -f "runs/long/$1/log.csv" ] && [ "$(tail -1 "runs/long/$1/log.csv" | cut -d, -f1)" = "$2" ]; }
until done_n resnet18_48 60 && done_n mini_xception_48 60; do sleep 120; done
done_n mini_xception_48_pipeline 5 || scripts/pipeline_finetune.sh mini_xception_48 1
out=runs/long/mobilenet_v2
nice -n 10 .venv/bin/edgefer train mobilenet_v2 --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe strong --out $out --threads 1 --auto-resume >> runs/long/mobilenet_v2.log 2>&1
