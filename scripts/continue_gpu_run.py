"""Continue, here, a run that a GPU machine stopped: its weights came back, its training state did not.

scripts/gpu/runs.sh brings back each run's log and last epoch's weights, not the optimizer's state, so
``edgefer train --resume`` cannot pick the run up. This writes the ``train_state.pt`` it needs beside a
copy of those weights: the epoch the weights finished, the data-order generator as it stood after that
epoch (each epoch's draws replayed from ``--seed`` with the engine's own ``EpochProgress.draw``), and SGD
with fresh momentum (the one thing that differs from a run that never stopped: momentum rebuilds within a
few dozen steps).

    .venv/bin/python scripts/continue_gpu_run.py runs/gpu2/resnet18_96_seed1 runs/long/resnet18_96_seed1 --seed 1
    .venv/bin/edgefer train resnet18 --recipe strong --seed 1 --out runs/long/resnet18_96_seed1 --resume ...

The log's rows so far are copied too (their validation column is whatever the GPU run validated on).
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import torch

from edgefer.loading import load_model
from edgefer.loading.checkpoint import save_train_state
from edgefer.train.engine import EpochProgress

FER2013_TRAINING = 28709  # faces in FER2013's Training split: the permutation's length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the GPU run's folder: log.csv and last/")
    parser.add_argument("out", type=Path, help="the run folder to continue in (created; must not hold a run)")
    parser.add_argument("--seed", type=int, required=True, help="the run's --seed")
    parser.add_argument("--train-size", type=int, default=FER2013_TRAINING)
    args = parser.parse_args()

    if (args.out / "last").exists():
        parser.error(f"{args.out} already holds a run; resume it with edgefer train --resume")
    with open(args.run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    epochs = int(rows[-1]["epoch"])
    if [int(r["epoch"]) for r in rows] != list(range(1, epochs + 1)):
        parser.error(f"{args.run / 'log.csv'} does not log epochs 1..{epochs} in order")

    loaded = load_model(args.run / "last", "torch")  # the weights load, before anything is written
    model, recipe = loaded.net, loaded.meta.recipe
    if recipe.get("pipeline_views"):  # each epoch also draws one of 3 views per face
        parser.error(f"{args.run}: a recipe with pipeline views cannot be continued by this script")
    generator = torch.Generator().manual_seed(args.seed)
    for _ in range(epochs):
        EpochProgress.draw(args.train_size, 1, generator)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe["lr"], momentum=recipe["momentum"], weight_decay=recipe["weight_decay"]
    )

    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(args.run / "last", args.out / "last")
    shutil.copy(args.run / "log.csv", args.out / "log.csv")
    best = {"accuracy": -1.0}  # validated elsewhere on other faces: the next epoch here is the first best
    save_train_state(
        args.out / "last",
        {"optimizer": optimizer.state_dict(), "generator": generator.get_state(), "epoch": epochs, "best": best},
    )
    print(f"{args.out}: continues {recipe['name']} after epoch {epochs} of {recipe['epochs']}")


if __name__ == "__main__":
    main()
