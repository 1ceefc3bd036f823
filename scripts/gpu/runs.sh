#!/usr/bin/env bash
# `strong`-recipe runs (96 px, 60 epochs) trained side by side on one GPU machine (the device tool: 10 minutes
# a call), each fed by its share of the CPU cores as augmenting worker processes (`edgefer train --workers`;
# augmentation is CPU work).
#   bash scripts/gpu/runs.sh BUDGET_S [NAME=MODEL[,ARG,...] ...]
# With no runs named: Table 1's two unfinished rows, `shufflenet` (the backbone alone) and `mobilenet_v2`, and
# `resnet18_96`, a cloud candidate (the first call, 2026-11-30); `resnet18_96_seed1=resnet18,--seed,1` was the second.
# Another recipe: e.g. student128=shufflenet_asp_sfp,--recipe,distill,--teacher,default-large,--input-size,128
#
# Here, first (the data must travel in under 64 MiB with the repo, see fer2013_pack.py):
#   python scripts/gpu/fer2013_pack.py pack ../shared/data/fer2013 .gpu-data --val 1000
#   PyWavelets' cp312 wheel, without its tests and sample data, in .whl/ (the GPU image lacks it)
# The device call carries .gpu-data and .whl. Each run's log.csv, output and last epoch's weights come back in
# $OUT/runs.tar.part-* (cat them | tar -x). The logs' validation column is on the first 1000 PublicTest faces
# only; score the weights on all of PublicTest here.
set -u
budget=${1:-540}  # seconds of training; the call's limit is 600
shift
cd "$(dirname "$0")/../.."
python3 -c "import pywt" 2>/dev/null ||  # the wheels of what the image lacks (PyWavelets), unpacked
  python3 -c "import glob, zipfile; [zipfile.ZipFile(w).extractall('/tmp/site') for w in glob.glob('.whl/*.whl')]"
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
[ -f /tmp/fer/fer2013.csv ] || python3 scripts/gpu/fer2013_pack.py unpack .gpu-data /tmp/fer || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "cpus: $(nproc)"
runs_dir=/tmp/runs
mkdir -p $runs_dir
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(shufflenet=shufflenet mobilenet_v2=mobilenet_v2 resnet18_96=resnet18)
workers=$(( ($(nproc) - ${#runs[@]}) / ${#runs[@]} ))  # one core for each run's main process, the rest shared
train() {  # NAME=MODEL[,ARG,...]
  local name=${1%%=*} args
  IFS=, read -r -a args <<< "${1#*=}"
  timeout -s TERM "$budget" python3 scripts/gpu/train.py --recipe strong "${args[@]}" --data /tmp/fer/fer2013.csv \
    --ferplus /tmp/fer/fer2013new.csv --out $runs_dir/$name --threads 1 --workers $workers \
    --save-every 0 > $runs_dir/$name.out 2>&1  # a run's own --recipe, after `strong`, wins
  echo "$name: exit $?"
}
for run in "${runs[@]}"; do train "$run" & done
wait
tail -n 2 $runs_dir/*/log.csv $runs_dir/*.out
cd $runs_dir && tar -cf - */log.csv ./*.out */last/model.json */last/model.safetensors | split -b 15m - "$OUT/runs.tar.part-"
ls -la "$OUT"
