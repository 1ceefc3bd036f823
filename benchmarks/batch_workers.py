"""What starting the batch workers anew each epoch costs, against keeping them for the run.

``edgefer train --workers N`` makes the next batches in N forked processes (``BatchMaker``). Forking
them copies the page tables of a process that holds the whole training set, and an epoch cannot start
before a worker has made its first batch. This times epochs of a few steps with a new ``BatchMaker``
each epoch (what the engine did until 2026-12-01) and with one kept for the run (what it does now),
on a training set of FER2013's size in two views, made with the `strong` recipe's augmentation.
No model step: the gap is all worker start-up and shut-down.

    .venv/bin/python benchmarks/batch_workers.py --workers 2 4 15 --json docs/batch_workers.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from edgefer.data import Preprocess
from edgefer.train import RECIPES, TrainSet
from edgefer.train.engine import BatchMaker, EpochProgress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4, 15])
    parser.add_argument("--faces", type=int, default=28_709, help="training faces (FER2013's Training split)")
    parser.add_argument("--steps", type=int, default=8, help="steps an epoch")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    recipe = RECIPES["strong"]
    pre = Preprocess(size=recipe.input_size, mean=0.5, std=0.25)
    generator = torch.Generator().manual_seed(0)
    views = torch.randint(0, 256, (2, args.faces, 1, pre.resize, pre.resize), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 7, (args.faces,), generator=generator)
    data = TrainSet(views, labels, torch.nn.functional.one_hot(labels, 7).float())
    size_gb = views.numel() / 1e9
    print(f"{args.faces} faces in 2 views at {pre.resize} px ({size_gb:.1f} GB), {args.steps} steps an epoch")

    def keys(progress: EpochProgress) -> list:
        b = recipe.batch_size
        return [(progress.order[s * b : (s + 1) * b].numpy(), progress.view[:b].numpy(), s) for s in range(args.steps)]

    def epoch(maker: BatchMaker, close: bool) -> tuple[float, float]:
        """Seconds to the first batch and to the end of the epoch (with shutting the workers down)."""
        began = time.perf_counter()
        batches = maker(keys(EpochProgress.draw(args.faces, 2, generator)))
        next(batches)
        first = time.perf_counter()
        for _ in batches:
            pass
        if close:
            maker.close()
        return first - began, time.perf_counter() - began

    rows = []
    for workers in args.workers:
        for mode in ("new each epoch", "kept for the run"):
            with BatchMaker(data, pre, recipe, workers) as kept:
                if mode == "kept for the run":
                    times = [epoch(kept, close=False) for _ in range(args.epochs)]
                else:
                    times = [epoch(BatchMaker(data, pre, recipe, workers), close=True) for _ in range(args.epochs)]
            later = times[1:]  # the first epoch starts the workers either way
            rows.append(
                {
                    "workers": workers,
                    "mode": mode,
                    "first_batch_ms": 1e3 * statistics.median(t[0] for t in later),
                    "epoch_ms": 1e3 * statistics.median(t[1] for t in later),
                    "epochs": len(later),
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.0f}"))
    if args.json:
        note = {"faces": args.faces, "steps": args.steps, "resize": pre.resize, "cores": os.cpu_count()}
        args.json.write_text(json.dumps({"setup": note, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
