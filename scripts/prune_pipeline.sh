# The recipe every shipped ResNet18 of the cloud's model gets after training, written once (sourced by
# scripts/make_default_large.sh and scripts/make_large_two_seeds.sh): 12.5% of each basic block's inner channels
# pruned (no fine-tune), then the 5-epoch `pipeline` fine-tune (scripts/pipeline_finetune.sh) into
# runs/long/RUN_pipeline. Each step returns at once when done, so rerunning resumes.
#   prune_and_finetune FROM PRUNED RUN [TRAIN_ARGS...]   # FROM: the trained checkpoint; PRUNED: edgefer prune's
#                                                        # --out; TRAIN_ARGS go to the fine-tune (e.g. --bf16)
prune_and_finetune() {
  [ -f "$2/pruned/model.json" ] || .venv/bin/edgefer prune --checkpoint "$1" --ratio 0.125 --finetune-epochs 0 \
    --data ../shared/data/fer2013/fer2013.csv.gz --out "$2"
  scripts/pipeline_finetune.sh "$3" 2 "$2/pruned" "${@:4}"
}
