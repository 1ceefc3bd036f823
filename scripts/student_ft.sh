#!/usr/bin/env bash
# The distilled student, as a fine-tune: the 60-epoch strong run (runs/long/shufflenet_asp_sfp) distilled for 10
# epochs at lr 0.01 from the three-member teacher (ResNet18 @ 48, the strong run, the edge model v1; 67.8% together),
# online, 2 threads; then the same 5-epoch `pipeline` fine-tune that made the edge model v2, then a control without
# the teacher. The from-scratch 60-epoch student of scripts/after_long_runs.sh needs ~5 h at 2 threads; this one
# fits a working session (docs/RESULTS.md, "The distilled student").
# Resumable: rerun this script.
cd "$(dirname "$0")/.."
D=../shared/data/fer2013
T=runs/long/resnet18_48/last,runs/long/shufflenet_asp_sfp/last,runs/long/default_v1
done_n() { [ -f "$1/log.csv" ] && [ "$(tail -1 "$1/log.csv" | cut -d, -f1)" = "$2" ]; }
S=runs/long/student_ft
done_n $S 10 || .venv/bin/edgefer train shufflenet_asp_sfp --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe distill --init runs/long/shufflenet_asp_sfp/last --keep-head --lr 0.01 --epochs 10 --teacher $T \
  --out $S --threads 2 --auto-resume >> $S.log 2>&1 || exit 1
scripts/pipeline_finetune.sh student_ft 2   # -> runs/long/student_ft_pipeline
# The control: the same 10 epochs from the same start without the teacher (--recipe strong), so that what the
# teacher adds is told apart from what 10 more epochs add.
C=runs/long/student_ft_control
done_n $C 10 || .venv/bin/edgefer train shufflenet_asp_sfp --data $D/fer2013.csv.gz --ferplus $D/fer2013new.csv \
  --recipe strong --init runs/long/shufflenet_asp_sfp/last --keep-head --lr 0.01 --epochs 10 \
  --out $C --threads 2 --auto-resume >> $C.log 2>&1
