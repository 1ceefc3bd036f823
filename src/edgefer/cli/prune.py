"""``edgefer prune``: structured channel pruning of a ShuffleNetV2 checkpoint, then fine-tuning.

Usage:
    edgefer prune --checkpoint default --ratio 0.5 --finetune-epochs 3 \\
        --data ../shared/data/fer2013/fer2013.csv.gz --out runs/pruned50
    edgefer prune --ratio 0.25 --finetune-epochs 0 --out runs/pruned25-raw    # no data needed

OUT/pruned is the model right after pruning; OUT/last (and OUT/best) the fine-tuned one, with a CSV
log and --resume like `edgefer train`. Every one of them is an ordinary checkpoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer


def prune(
    out: Annotated[Path, typer.Option(help="Run folder: pruned/, last/, best/ checkpoints and log.csv.")],
    checkpoint: Annotated[str, typer.Option(help="ShuffleNetV2 checkpoint folder, or 'default'.")] = "default",
    ratio: Annotated[float, typer.Option(min=0.0, max=0.95, help="Fraction of branch channels removed.")] = 0.5,
    finetune_epochs: Annotated[int, typer.Option(min=0, help="Epochs of fine-tuning on --data (0: none).")] = 3,
    data: Annotated[Path | None, typer.Option(help="FER2013 CSV or Kaggle folders: fine-tune and evaluate.")] = None,
    round_to: Annotated[int, typer.Option(min=1, help="Keep a multiple of this many channels per branch.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed for data order and augmentation.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue the fine-tuning from OUT/last.")] = False,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all).")] = None,
) -> None:
    """Prune every ShuffleNetV2 unit's branch by --ratio, fine-tune, and write ordinary checkpoints."""
    import torch

    from ..pretrained import load_pretrained
    from ..profiling import count_macs, count_params
    from ..prune import prune as prune_model
    from ..train import RECIPES, evaluate
    from ..train import train as train_model
    from ..train.checkpoint import preprocess_of, save_checkpoint
    from .train import fer2013_train_val, progress

    if finetune_epochs > 0 and data is None:
        raise typer.BadParameter("fine-tuning needs --data (or pass --finetune-epochs 0)", param_hint="--data")
    if threads:
        torch.set_num_threads(threads)
    net, meta = load_pretrained(checkpoint)
    size = meta["preprocess"]["size"]
    example = torch.zeros(1, 3, size, size)
    before = {"params": count_params(net), "macs": count_macs(net, example)}
    prune_model(net, ratio, round_to=round_to)
    after = {"params": count_params(net), "macs": count_macs(net, example)}
    info: dict[str, Any] = {
        "from": str(checkpoint),
        "ratio": ratio,
        "round_to": round_to,
        "params_before": before["params"],
        "macs_before": before["macs"],
        **after,
        "branch_widths": net.build_args["branch_widths"],
    }
    typer.echo(
        f"pruned {ratio:.0%} of the branch channels: params {before['params']:,} -> {after['params']:,} "
        f"({after['params'] / before['params']:.2f}x), MACs at {size} px {before['macs']:,} -> {after['macs']:,} "
        f"({after['macs'] / before['macs']:.2f}x)"
    )
    base = {k: meta[k] for k in ("classes", "preprocess", "recipe", "data", "seed") if k in meta}
    pruned_meta: dict[str, Any] = {**base, "init": str(checkpoint), "pruned": info}
    train_data = val_data = None
    if data is not None:
        train_data, val_data = fer2013_train_val(data)
        tta = bool(meta.get("recipe", {}).get("tta_flip", False))
        report = evaluate(net, val_data, preprocess_of(meta), tta_flip=tta)
        pruned_meta["metrics"] = {"epoch": 0, **{k: report[k] for k in ("accuracy", "macro_f1", "loss", "n")}}
        base_acc = meta.get("metrics", {}).get("accuracy")
        typer.echo(
            f"{val_data.source}: accuracy {report['accuracy']:.4f} right after pruning"
            + (f" (before: {base_acc:.4f})" if base_acc is not None else "")
        )
    save_checkpoint(out / "pruned", net, pruned_meta)
    if finetune_epochs == 0:
        typer.echo(f"-> {out / 'pruned'}")
        return
    assert train_data is not None and val_data is not None
    recipe = dataclasses.replace(RECIPES["prune"], epochs=finetune_epochs)
    bar, on_batch = progress(finetune_epochs)
    train_model(
        net.build_args["name"],
        train_data,
        val_data,
        out,
        recipe=recipe,
        init=out / "pruned",
        new_head=False,
        seed=seed,
        resume=resume and (out / "last" / "train_state.pt").is_file(),  # nothing to resume: start
        extra_meta={"pruned": info},
        on_batch=on_batch,
    )
    bar.close()
    typer.echo(f"fine-tuned {finetune_epochs} epochs -> {out / 'last'} (per-epoch log: {out / 'log.csv'})")
