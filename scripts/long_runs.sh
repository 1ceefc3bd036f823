#!/usr/bin/env bash
# The long training runs: two slots, one thread each, each running its queue in turn.
# Outputs in runs/long/<run>/ (git-ignored). Resumable: rerun this script
#   nohup scripts/long_runs.sh > runs/long/run.out 2>&1 &
# a finished run is skipped, an interrupted one resumes from runs/long/<run>/last, or from partial/
# (saved every 10 minutes within an epoch, and on SIGTERM). `scripts/long_runs.sh a` runs queue A alone.
# Queue C (not in the default pair; 2 threads): the edge model's run again at 112 px, the size at which its student
# gained 1.1 pt (docs/RESULTS.md, "The control: the same student at 96 px"): `scripts/long_runs.sh c`.
# Queue D (2 threads): second seeds of v2's run at 112 and at 96 px, to tell the 112-px run's +1.1 pt from seed
# noise (RESULTS.md, "v2's own run at 112 px"): `scripts/long_runs.sh d`, then scripts/make_default.sh on each.
# Queue E (2 threads, bfloat16 autocast: for CPUs with AMX, where a ResNet18 @ 96 step is 1.9x faster): a second
# seed of the cloud's ResNet18 @ 96, 40 epochs to fit one working session (docs/RESULTS.md, "bfloat16 on AMX"),
# the second member of a two-seed cloud model beside default-large (scripts/make_large_seed.sh 1).
# Queue F (2 threads, bfloat16): a third seed, 50 epochs (about 2 h on an AMX CPU), a second member for
# default-large closer to seed 0's 60 epochs than queue E's 40 (scripts/make_large_seed.sh 2).
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
train() {  # NAME MODEL [extra args...]
  local name=$1 model=$2; shift 2
  local out=runs/long/$name
  nice -n 10 .venv/bin/edgefer train "$model" --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
    --recipe strong --out "$out" --threads 1 --auto-resume "$@" >> runs/long/$name.log 2>&1
}
slot_a() {
  train shufflenet_asp_sfp shufflenet_asp_sfp
  train shufflenet shufflenet
}
slot_b() {
  train resnet18_48 resnet18 --input-size 48
  train mini_xception_48 mini_xception --input-size 48
}
slot_c() {
  train shufflenet_asp_sfp_112 shufflenet_asp_sfp --input-size 112 --threads 2
}
slot_d() {
  train shufflenet_asp_sfp_112_seed1 shufflenet_asp_sfp --input-size 112 --threads 2 --seed 1
  train shufflenet_asp_sfp_seed1 shufflenet_asp_sfp --threads 2 --seed 1
}
slot_e() {
  train resnet18_96_seed1 resnet18 --threads 2 --seed 1 --bf16 --epochs 40
}
slot_f() {
  train resnet18_96_seed2 resnet18 --threads 2 --seed 2 --bf16 --epochs 50
}
for slot in ${@:-a b}; do "slot_$slot" & done
wait
