#!/usr/bin/env bash
# Measures what a seed's ResNet18 @ 96 run gives the cloud's model (docs/RESULTS.md, "A third seed" and "The rule
# for replacing default-large"), once scripts/long_runs.sh has trained it: scripts/make_large_seed.sh SEED (prune,
# pipeline, the INT4 pair with default-large), the pair logit-adjusted at tau 0.25 (`edgefer adjust`), then
# benchmarks/cross_dataset.py on every stage and benchmarks/paired_test.py of each pair against default-large.
# Waits for the seed's training run if it is still going, and stops if it stopped unfinished. Every step is cached
# or skipped when done: rerun it.
#   scripts/judge_large_seed.sh SEED [ROW...]   # ROWs: more cross_dataset.py rows, e.g. three seeds at float32
# Writes docs/cloud_seed$SEED.json and docs/large_x2s${SEED}{,_int4,_int4_tau}_vs_large.json.
set -e
cd "$(dirname "$0")/.."
seed=${1:?usage: scripts/judge_large_seed.sh SEED [ROW...]}; shift
while pgrep -f "edgefer train resnet18 .*--seed $seed " > /dev/null; do sleep 30; done
pair=runs/large_x2s${seed}_int4 run=runs/long/resnet18_96_seed$seed/last tuned=runs/long/r18s${seed}p125_pipeline/last
.venv/bin/python - "$run" <<'PY'  # never prune a run that has not finished: resume it first (scripts/long_runs.sh)
import sys

from edgefer.loading import read_meta

meta = read_meta(sys.argv[1])
done, planned = meta["metrics"]["epoch"], meta["recipe"]["epochs"]
sys.exit(0 if done == planned else f"{sys.argv[1]}: {done} of {planned} epochs trained; resume the run first")
PY
scripts/make_large_seed.sh "$seed" "$pair"
[ -f "${pair}_tau/model.json" ] || .venv/bin/edgefer adjust --checkpoint "$pair" --tau 0.25 \
  --data ../shared/data/fer2013/fer2013.csv.gz --out "${pair}_tau"
py() { nice -n 10 .venv/bin/python "$@" --threads 2; }
py benchmarks/cross_dataset.py large=default-large "seed$seed=$run" "seed${seed}_pruned_pipeline=$tuned" \
  "large+seed$seed=default-large+$tuned" "large_x2s${seed}_int4=$pair" "large_x2s${seed}_int4_tau=${pair}_tau" "$@" \
  --json "docs/cloud_seed$seed.json"
for b in "default-large+$tuned large_x2s$seed" "$pair large_x2s${seed}_int4" "${pair}_tau large_x2s${seed}_int4_tau"; do
  set -- $b
  py benchmarks/paired_test.py default-large "$1" --json "docs/$2_vs_large.json"
done
