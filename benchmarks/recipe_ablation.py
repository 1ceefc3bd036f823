"""Short training runs that measure each ingredient of the ``strong`` recipe before the long runs use it.

Two designs (``--design``):

* ``finetune`` (the one the recipe was chosen by): the shipped default model fine-tuned for 3
  epochs at its 96 px (cosine from lr 0.01, label smoothing, re-framing: the ``reframe`` recipe),
  once as a control and once with each ingredient added on its own. A converged model shows what an
  ingredient does to what it has learnt, without the slower convergence that every regulariser
  brings to a short run from scratch.
* ``scratch``: a ladder of variants of the ``cpu`` recipe, each adding one ingredient to its parent,
  trained as ShuffleNetV2 at 48 px for 10 epochs. At that length every regulariser mainly slows
  convergence (docs/RESULTS.md), so it measures little; kept for the record:

    base          cpu recipe (cosine, label smoothing 0.1, flip TTA)
    geometry      + random re-framing (side x/÷ 1.15, centre +-6%, +-10 degrees)
    erasing       + random erasing (p 0.5)
    photometric   + blur, JPEG, gamma, contrast, noise
    ferplus       + FER+ vote distributions, half of each target
    logit_adjust  + logit adjustment (tau 1) against the training prior
    mixing        ferplus + MixUp (0.2) / CutMix (1.0) on half of the batches
    ferplus_only  photometric + FER+ votes as the whole target

Each run goes to ``OUT/<variant>`` with the usual log and checkpoints and resumes where it stopped;
score them with benchmarks/cross_dataset.py. One variant per call, so that two can run side by side:

    .venv/bin/python benchmarks/recipe_ablation.py --data ../shared/data/fer2013/fer2013.csv.gz \\
        --ferplus ../shared/data/fer2013/fer2013new.csv --out runs/ablation --variant base --threads 1
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import torch

from edgefer.data import Erasing, Jitter, Photometric, fer2013_train_val, ferplus_as_fer2013, ferplus_votes
from edgefer.train import RECIPES, Recipe, saved_place, train
from edgefer.train.mixing import Mixing

BASE = replace(RECIPES["cpu"], name="ablation-base", input_size=48, epochs=10)


FINETUNE = replace(RECIPES["reframe"], name="finetune-control", epochs=3)


def finetune_variants() -> dict[str, Recipe]:
    """The control and one variant per ingredient, each the control plus that ingredient alone."""
    changes: dict[str, dict] = {
        "photometric": {"photometric": Photometric.real_photos()},
        "erasing": {"erasing": Erasing(p=0.5)},
        "ferplus": {"votes_weight": 0.5},
        "logit_adjust": {"logit_adjust": 1.0},
        "mixing": {"mixing": Mixing(mixup=0.2, cutmix=1.0, p=0.5)},
    }
    out = {"control": FINETUNE}
    for name, change in changes.items():
        out[name] = replace(FINETUNE, name=f"finetune-{name}", **change)
    return out


def variants() -> dict[str, Recipe]:
    """The ladder: each variant is its parent plus one change."""
    steps: list[tuple[str, str, dict]] = [
        ("geometry", "base", {"jitter": Jitter(scale=0.15, shift=0.06, degrees=10.0)}),
        ("erasing", "geometry", {"erasing": Erasing(p=0.5)}),
        ("photometric", "erasing", {"photometric": Photometric.real_photos()}),
        ("ferplus", "photometric", {"votes_weight": 0.5}),
        ("logit_adjust", "ferplus", {"logit_adjust": 1.0}),
        ("mixing", "ferplus", {"mixing": Mixing(mixup=0.2, cutmix=1.0, p=0.5)}),
        ("ferplus_only", "photometric", {"votes_weight": 1.0}),
    ]
    out = {"base": BASE}
    for name, parent, change in steps:
        out[name] = replace(out[parent], name=f"ablation-{name}", **change)
    return out


def main() -> None:
    designs = {"finetune": finetune_variants(), "scratch": variants()}
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--design", choices=list(designs), default="finetune")
    parser.add_argument("--data", required=True, help="FER2013 CSV")
    parser.add_argument("--ferplus", required=True, help="fer2013new.csv (FER+ votes)")
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--variant", required=True, help="a variant of the design (see the module docstring)")
    parser.add_argument("--model", default="shufflenet")
    parser.add_argument("--epochs", type=int, help="override the variant's epochs")
    parser.add_argument("--init", default="default", help="finetune: the model to start from")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    ladder = designs[args.design]
    if args.variant not in ladder:
        parser.error(f"--design {args.design} has variants {list(ladder)}")
    recipe = replace(ladder[args.variant], epochs=args.epochs or ladder[args.variant].epochs)
    finetune = args.design == "finetune"
    train_data, val_data = fer2013_train_val(args.data)
    votes = ferplus_as_fer2013(ferplus_votes(args.ferplus, {"Training": len(train_data)})["Training"])
    out = Path(args.out) / args.variant
    resume = saved_place(out) is not None  # where it stopped, within an epoch too
    best = train(
        args.model,
        train_data,
        val_data,
        out,
        recipe=recipe,
        init=args.init if finetune else None,
        new_head=not finetune,
        seed=args.seed,
        resume=resume,
        votes=votes if recipe.votes_weight > 0 else None,
        data_note=f"recipe ablation {args.variant}",
    )
    print(f"{args.design}/{args.variant}: best PublicTest accuracy {best['accuracy']:.4f} at epoch {best['epoch']}")


if __name__ == "__main__":
    main()
