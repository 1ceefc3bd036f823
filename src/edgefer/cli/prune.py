"""``edgefer prune``: structured channel pruning of a ShuffleNetV2 or ResNet checkpoint, then fine-tuning.

Usage:
    edgefer prune --checkpoint default --ratio 0.5 --finetune-epochs 3 \\
        --data ../shared/data/fer2013/fer2013.csv.gz --out runs/pruned50
    edgefer prune --ratio 0.25 --finetune-epochs 0 --out runs/pruned25-raw    # no data needed

OUT/pruned is the model right after pruning; OUT/last (and OUT/best) the fine-tuned one, with a CSV
log and --resume like `edgefer train`. Every one of them is an ordinary checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import CheckpointOpt, ThreadsOpt


def prune(
    out: Annotated[Path, typer.Option(help="Run folder: pruned/, last/, best/ checkpoints and log.csv.")],
    checkpoint: CheckpointOpt = "default",
    ratio: Annotated[float, typer.Option(min=0.0, max=0.95, help="Fraction of branch channels removed.")] = 0.5,
    finetune_epochs: Annotated[int, typer.Option(min=0, help="Epochs of fine-tuning on --data (0: none).")] = 3,
    data: Annotated[Path | None, typer.Option(help="FER2013 CSV or Kaggle folders: fine-tune and evaluate.")] = None,
    round_to: Annotated[int, typer.Option(min=1, help="Keep a multiple of this many channels per branch.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed for data order and augmentation.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the fine-tuning in OUT (or start it).")] = False,
    threads: ThreadsOpt = None,
) -> None:
    """Prune every residual unit's branch by --ratio, fine-tune, and write ordinary checkpoints."""
    import torch

    from ..data import fer2013_train_val
    from ..prune import prune_checkpoint
    from .train import progress

    if finetune_epochs > 0 and data is None:
        raise typer.BadParameter("fine-tuning needs --data (or pass --finetune-epochs 0)", param_hint="--data")
    if threads:
        torch.set_num_threads(threads)
    bar, on_batch = progress(finetune_epochs)
    info = prune_checkpoint(
        checkpoint,
        out,
        ratio=ratio,
        round_to=round_to,
        data=fer2013_train_val(data) if data is not None else None,
        finetune_epochs=finetune_epochs,
        seed=seed,
        resume=resume,
        on_batch=on_batch,
    )
    bar.close()
    typer.echo(
        f"pruned {ratio:.0%} of the branch channels: params {info['params_before']:,} -> {info['params']:,} "
        f"({info['params'] / info['params_before']:.2f}x), MACs at {info['input_size']} px "
        f"{info['macs_before']:,} -> {info['macs']:,} ({info['macs'] / info['macs_before']:.2f}x)"
    )
    if "accuracy_pruned" in info:
        before = info["accuracy_before"]
        typer.echo(
            f"accuracy {info['accuracy_pruned']:.4f} right after pruning"
            + (f" (before: {before:.4f})" if before is not None else "")
        )
    typer.echo(f"-> {out / ('last' if finetune_epochs else 'pruned')}")
