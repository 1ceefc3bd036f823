"""``edgefer train``: train a registered model on FER2013 (CSV or Kaggle folders).

Usage:
    edgefer train shufflenet_asp_sfp --data ../shared/data/fer2013/fer2013.csv.gz --recipe cpu --out runs/full
    edgefer train shufflenet_asp_sfp --data ... --out runs/full --resume        # or --auto-resume in scripts
    edgefer train resnet18 --data ... --recipe strong --ferplus ../shared/data/fer2013/fer2013new.csv --out runs/r18
    edgefer train shufflenet_asp_sfp --data ... --recipe distill --ferplus ... --teacher runs/r18/last,runs/x2/last \\
        --out runs/student
    edgefer train shufflenet_asp_sfp --data ... --recipe pipeline --init default --keep-head --out runs/pipeline
    torchrun --nproc-per-node 2 -m edgefer.cli.main train shufflenet --data ... --threads 1 --out runs/ddp
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from ..data import fer2013_train_val, ferplus_as_fer2013, ferplus_votes
from ..pretrained import resolve_checkpoint
from ..train import RECIPES, RunExists, TrainingInterrupted, saved_place
from ..train import train as train_model
from .options import ThreadsOpt

log = logging.getLogger("edgefer")


def progress(epochs: int, enabled: bool = True) -> tuple[tqdm, Callable[[int, int, int, float], None]]:
    """A tqdm bar over each epoch's batches (silent when not a terminal: the engine logs per epoch)."""
    bar = tqdm(unit="batch", dynamic_ncols=True, disable=None if enabled else True)

    def on_batch(epoch: int, step: int, steps: int, loss: float) -> None:
        if step == 0:
            bar.reset(total=steps)
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        bar.update()

    return bar, on_batch


@contextmanager
def stop_requested(signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)) -> Iterator[Callable[[], bool]]:
    """A flag that ``signals`` raise instead of killing the process, so that training can save its
    place first; the previous handlers come back on exit."""
    raised: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: raised.append(signum)) for s in signals}
    try:
        yield lambda: bool(raised)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _init_distributed() -> int:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); returns this rank."""
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return 0
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank()


def train(
    model: Annotated[str, typer.Argument(help="Registered model name (see `edgefer models`).")],
    data: Annotated[Path, typer.Option(help="FER2013 CSV (.csv or .csv.gz) or Kaggle image-folder root.")],
    out: Annotated[Path, typer.Option(help="Run folder: log.csv, last/ and best/ checkpoints.")],
    recipe: Annotated[str, typer.Option(help=f"One of {', '.join(RECIPES)}.")] = "cpu",
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the recipe's epochs.")] = None,
    input_size: Annotated[
        int | None, typer.Option(min=32, help="Override the recipe's input size (with --init: the checkpoint's).")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Override the recipe's peak learning rate.")] = None,
    votes_weight: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Override the recipe's weight of FER+ votes in the targets (needs --ferplus)."),
    ] = None,
    wavelet: Annotated[str | None, typer.Option(help="SFP wavelet override.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for init, data order and augmentation.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last or OUT/partial (the further on).")] = False,
    auto_resume: Annotated[
        bool, typer.Option(help="Continue the run in OUT if there is one, else start it (for scripts that are rerun).")
    ] = False,
    init: Annotated[
        str | None,
        typer.Option(
            help="Fine-tune from this checkpoint folder (or 'default', 'default-large': a one-member ensemble "
            "starts from its network) with a new head."
        ),
    ] = None,
    keep_head: Annotated[
        bool,
        typer.Option(help="With --init: keep the checkpoint's head (same classes), e.g. --recipe reframe or pipeline."),
    ] = False,
    ferplus: Annotated[
        Path | None,
        typer.Option(help="FER+ votes (fer2013new.csv), blended into the targets by recipes that use them."),
    ] = None,
    teacher: Annotated[
        str | None, typer.Option(help="Checkpoint(s) to distil from, comma-separated (recipe distill).")
    ] = None,
    teacher_mode: Annotated[
        str | None, typer.Option(help="online (teacher on every batch) or fixed (once); default: the recipe's.")
    ] = None,
    micro_batches: Annotated[int, typer.Option(min=1, help="Split each batch into this many micro-batches.")] = 1,
    channels_last: Annotated[bool, typer.Option(help="NHWC memory format (faster on CPU, measured).")] = True,
    bf16: Annotated[
        bool,
        typer.Option(
            help="Forward passes in bfloat16 (torch.autocast); weights and updates stay float32. Fast on CPUs with "
            "AMX (1.9x for ResNet18 @ 96, measured), no faster for ShuffleNetV2."
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=0, help="Processes that augment the next batches while the model trains (0: in turn); same result."
        ),
    ] = 0,
    save_every: Annotated[
        float,
        typer.Option(min=0, help="Minutes between saves of the place within an epoch (OUT/partial); 0: never."),
    ] = 10.0,
    threads: ThreadsOpt = None,
) -> None:
    """Train with per-epoch checkpoints (OUT/last, OUT/best), a CSV log and --resume; torchrun for several processes."""
    import torch

    from ..train.distill import Teacher

    if recipe not in RECIPES:
        raise typer.BadParameter(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    if lr is not None and lr <= 0:
        raise typer.BadParameter(f"--lr must be positive, got {lr}")
    chosen = RECIPES[recipe]
    chosen = dataclasses.replace(
        chosen,
        epochs=epochs or chosen.epochs,
        input_size=input_size or chosen.input_size,
        lr=chosen.lr if lr is None else lr,
        teacher_mode=teacher_mode or chosen.teacher_mode,
        votes_weight=chosen.votes_weight if votes_weight is None else votes_weight,
    )
    if keep_head and init is None:
        raise typer.BadParameter("--keep-head needs --init")
    if chosen.votes_weight > 0 and ferplus is None:
        raise typer.BadParameter(
            f"votes weight {chosen.votes_weight} (recipe {recipe}) blends in FER+ votes: pass --ferplus fer2013new.csv"
        )
    if chosen.distill_alpha > 0 and not teacher:
        raise typer.BadParameter(f"recipe {recipe} distils: pass --teacher CKPT[,CKPT...]")
    place = saved_place(out)
    if auto_resume:
        resume = place is not None
    elif place is not None and not resume:  # refused before the data is loaded
        raise typer.BadParameter(f"{RunExists(out, place)} (--resume continues it)", param_hint="--out")
    if threads:
        torch.set_num_threads(threads)
    rank = _init_distributed()
    train_data, val_data = fer2013_train_val(data)
    log.info("%d training and %d validation images from %s", len(train_data), len(val_data), data)
    votes = None
    if ferplus is not None and chosen.votes_weight > 0:
        split = train_data.source.rsplit(":", 1)[-1]
        votes = ferplus_as_fer2013(ferplus_votes(ferplus, {split: len(train_data)})[split])
    views = []
    if chosen.pipeline_views:
        from ..faces.synthetic import pipeline_views

        views = pipeline_views(train_data.images, out / "pipeline_views.npz", threads=torch.get_num_threads())
    teachers = None
    if teacher:
        teachers = Teacher.load([resolve_checkpoint(t.strip()) for t in teacher.split(",")], train_data.classes)
    bar, on_batch = progress(chosen.epochs, enabled=rank == 0)
    # SIGTERM saves the place and stops (one process; under torchrun it kills as usual)
    with stop_requested((signal.SIGTERM,) if int(os.environ.get("WORLD_SIZE", "1")) <= 1 else ()) as should_stop:
        try:
            best = train_model(
                model,
                train_data,
                val_data,
                out,
                recipe=chosen,
                overrides={"wavelet": wavelet},
                init=None if init is None else resolve_checkpoint(init),
                new_head=not keep_head,
                init_size=input_size,  # only when given: a fine-tune keeps its checkpoint's size by default
                seed=seed,
                resume=resume,
                views=views,
                votes=votes,
                teacher=teachers,
                micro_batches=micro_batches,
                channels_last=channels_last,
                autocast=torch.bfloat16 if bf16 else None,
                workers=workers,
                data_note=f"FER+ votes from {ferplus}" if votes is not None else "",
                on_batch=on_batch,
                save_every=save_every * 60 or None,
                should_stop=should_stop,
            )
        except TrainingInterrupted as exc:  # SIGTERM: the place is saved, --resume continues from it
            bar.close()
            typer.echo(f"edgefer train: {exc}", err=True)
            raise typer.Exit(128 + signal.SIGTERM) from None
    bar.close()
    if rank == 0:
        typer.echo(f"best: epoch {best['epoch']}, validation accuracy {best['accuracy']:.4f} -> {out / 'best'}")
