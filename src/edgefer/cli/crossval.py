"""``edgefer crossval``: subject-disjoint k-fold accuracy on CK+, fine-tuning from a checkpoint.

Usage:
    edgefer crossval --data ../shared/data/ckplus/CK+48 --init runs/full/best --out runs/ckplus
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from ..data import load_ckplus
from ..pretrained import resolve_checkpoint
from ..train import RECIPES
from ..train.crossval import cross_validate


def crossval(
    data: Annotated[Path, typer.Option(help="CK+ root: <class>/S<subject>_<seq>_<frame>.png.")],
    out: Annotated[Path, typer.Option(help="Run folder: one sub-folder per fold and crossval.json.")],
    init: Annotated[str, typer.Option(help="Checkpoint to fine-tune from, or 'default'.")] = "default",
    folds: Annotated[int, typer.Option(min=2, help="Number of subject-disjoint folds.")] = 10,
    epochs: Annotated[int, typer.Option(min=1, help="Fine-tuning epochs per fold (last epoch is scored).")] = 30,
    batch_size: Annotated[int, typer.Option(min=2, help="Batch size.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed for the folds and training.")] = 0,
    resume: Annotated[bool, typer.Option(help="Keep finished folds, continue an interrupted one.")] = False,
) -> None:
    """Fine-tune with a new head (constant lr 0.001) in every fold; report mean +- std accuracy."""
    recipe = dataclasses.replace(RECIPES["finetune"], epochs=epochs, batch_size=batch_size)
    summary = cross_validate(
        load_ckplus(data), out, recipe=recipe, init=resolve_checkpoint(init), folds=folds, seed=seed, resume=resume
    )
    typer.echo(json.dumps(summary["folds"]))
    typer.echo(
        f"{folds}-fold subject-disjoint accuracy: {summary['mean_accuracy']:.4f} +- {summary['std_accuracy']:.4f}"
    )
