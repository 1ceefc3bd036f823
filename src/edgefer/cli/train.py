"""``edgefer train``: train a registered model on FER2013 (CSV or Kaggle folders).

Usage:
    edgefer train shufflenet_asp_sfp --data ../shared/data/fer2013/fer2013.csv.gz --recipe cpu --out runs/full
    edgefer train shufflenet_asp_sfp --data ... --out runs/full --resume
    edgefer train shufflenet_asp_sfp --data ... --recipe reframe --init default --keep-head --out runs/reframe
    edgefer train shufflenet_asp_sfp --data ... --recipe pipeline --init default --keep-head --out runs/pipeline
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from ..data import FaceData, load_fer2013
from ..pretrained import resolve_checkpoint
from ..train import RECIPES
from ..train import train as train_model

log = logging.getLogger("edgefer")


def fer2013_train_val(path: Path) -> tuple[FaceData, FaceData]:
    """FER2013's Training and PublicTest splits (or the Kaggle folders train and test)."""
    splits = load_fer2013(path)
    for train_split, val_split in (("Training", "PublicTest"), ("train", "test")):
        if train_split in splits and val_split in splits:
            return splits[train_split], splits[val_split]
    raise typer.BadParameter(f"{path} has splits {sorted(splits)}; need Training+PublicTest or train+test")


def progress(epochs: int) -> tuple[tqdm, Callable[[int, int, int, float], None]]:
    """A tqdm bar over each epoch's batches (silent when not a terminal: the engine logs per epoch)."""
    bar = tqdm(unit="batch", dynamic_ncols=True, disable=None)

    def on_batch(epoch: int, step: int, steps: int, loss: float) -> None:
        if step == 0:
            bar.reset(total=steps)
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        bar.update()

    return bar, on_batch


def train(
    model: Annotated[str, typer.Argument(help="Registered model name (see `edgefer models`).")],
    data: Annotated[Path, typer.Option(help="FER2013 CSV (.csv or .csv.gz) or Kaggle image-folder root.")],
    out: Annotated[Path, typer.Option(help="Run folder: log.csv, last/ and best/ checkpoints.")],
    recipe: Annotated[str, typer.Option(help=f"One of {', '.join(RECIPES)}.")] = "cpu",
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the recipe's epochs.")] = None,
    input_size: Annotated[int | None, typer.Option(min=32, help="Override the recipe's input size.")] = None,
    wavelet: Annotated[str | None, typer.Option(help="SFP wavelet override.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for init, data order and augmentation.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.")] = False,
    init: Annotated[
        str | None, typer.Option(help="Fine-tune from this checkpoint folder (or 'default') with a new head.")
    ] = None,
    keep_head: Annotated[
        bool,
        typer.Option(help="With --init: keep the checkpoint's head (same classes), e.g. --recipe reframe or pipeline."),
    ] = False,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all).")] = None,
) -> None:
    """Train with per-epoch checkpoints (OUT/last, OUT/best), a CSV log and --resume."""
    import dataclasses

    import torch

    if recipe not in RECIPES:
        raise typer.BadParameter(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    chosen = RECIPES[recipe]
    chosen = dataclasses.replace(chosen, epochs=epochs or chosen.epochs, input_size=input_size or chosen.input_size)
    if keep_head and init is None:
        raise typer.BadParameter("--keep-head needs --init")
    if threads:
        torch.set_num_threads(threads)
    train_data, val_data = fer2013_train_val(data)
    log.info("%d training and %d validation images from %s", len(train_data), len(val_data), data)
    bar, on_batch = progress(chosen.epochs)
    best = train_model(
        model,
        train_data,
        val_data,
        out,
        recipe=chosen,
        overrides={"wavelet": wavelet},
        init=None if init is None else resolve_checkpoint(init),
        new_head=not keep_head,
        seed=seed,
        resume=resume,
        on_batch=on_batch,
    )
    bar.close()
    typer.echo(f"best: epoch {best['epoch']}, validation accuracy {best['accuracy']:.4f} -> {out / 'best'}")
