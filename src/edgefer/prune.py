"""Structured channel pruning of ShuffleNetV2 and ResNet models, inside each unit's main branch (torch-pruning).

torch-pruning's dependency graph of a whole ShuffleNetV2 fails at the channel shuffle
(``ZeroDivisionError``, upstream Torch-Pruning issues 14 and 45), and the channels a unit outputs
are tied to every later unit by the shuffle and the concatenation anyway. Inside a unit's main
branch (1x1 conv, BN, ReLU, 3x3 depthwise conv, BN, 1x1 conv, BN, ReLU) the inner channels are free:
removing one removes a row of the first 1x1 conv, one depthwise filter, their BN entries and a
column of the last 1x1 conv, and nothing outside the unit changes. So each branch is traced on its
own, and torch-pruning removes the channels of lowest group magnitude (the L2 norm over all the
weights that go with a channel, ``GroupMagnitudeImportance``) from that group.

A ResNet's basic block (3x3 conv, BN, ReLU, 3x3 conv, BN, plus the shortcut) is the same case: the
channels between its two convolutions are free, the block's output is tied to the shortcut. So the
block's inner channels are pruned the same way, and a pruned ResNet-18 keeps its shape everywhere else.

The pruned model records its widths in ``build_args["branch_widths"]``, so a checkpoint of it is
an ordinary checkpoint: ``build`` makes the narrower branches and the weights load into them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torchvision.models.resnet import BasicBlock

from .data import FaceData
from .models import FERNet
from .models.backbones import branch_widths, residual_units

__all__ = ["branch_widths", "prune", "prune_checkpoint", "pruned_widths"]


def pruned_widths(widths: list[int], ratio: float, round_to: int = 8) -> list[int]:
    """Inner widths after removing ``ratio`` of each branch's channels, rounded to ``round_to``.

    Rounding to a multiple of 8 keeps the channel counts friendly to vectorised CPU kernels; a
    branch keeps at least ``round_to`` channels and never more than it had.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"the pruning ratio is the fraction of channels removed, in [0, 1); got {ratio}")
    keep = []
    for width in widths:
        target = round_to * round(width * (1.0 - ratio) / round_to)
        keep.append(width if ratio == 0 else min(width, max(round_to, target)))
    return keep


def _prune_branch(unit: nn.Module, keep: int) -> None:
    # the branch alone, as a Sequential of the unit's own modules: pruning it prunes them in place
    if isinstance(unit, BasicBlock):
        branch = nn.Sequential(unit.conv1, unit.bn1, nn.ReLU(), unit.conv2)
    else:
        branch = unit.branch2
    first = branch[0]
    width = first.out_channels
    if keep >= width:
        return
    example = torch.randn(1, first.in_channels, 8, 8)
    graph = tp.DependencyGraph().build_dependency(branch, example_inputs=example)
    group = graph.get_pruning_group(first, tp.prune_conv_out_channels, idxs=list(range(width)))
    importance = tp.importance.GroupMagnitudeImportance(p=2)(group)
    drop = torch.argsort(importance)[: width - keep].tolist()
    graph.get_pruning_group(first, tp.prune_conv_out_channels, idxs=sorted(drop)).prune()


def prune(net: FERNet, ratio: float, *, round_to: int = 8) -> FERNet:
    """Remove ``ratio`` of the inner channels of every residual unit's main branch, in place.

    Returns ``net``, with ``build_args`` and ``config`` updated so that checkpoints rebuild it.
    Raises ``ValueError`` for a model that is neither a ShuffleNetV2 nor a basic-block ResNet.
    """
    stages = dict(net.named_children())
    units = residual_units(stages)
    keep = pruned_widths(branch_widths(stages), ratio, round_to)
    was_training = net.training
    net.eval()
    for unit, width in zip(units, keep, strict=True):
        _prune_branch(unit, width)
    net.train(was_training)
    widths = branch_widths(stages)
    net.build_args = {**net.build_args, "branch_widths": widths}
    net.config = dataclasses.replace(net.config, branch_widths=tuple(widths))
    return net


def prune_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    ratio: float,
    round_to: int = 8,
    data: tuple[FaceData, FaceData] | None = None,
    finetune_epochs: int = 0,
    seed: int = 0,
    resume: bool = False,
    on_batch: Callable[[int, int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Prune a checkpoint into ``out/pruned``, score it on ``data``'s validation split, then fine-tune it
    on ``data`` for ``finetune_epochs`` into ``out/last`` (and ``out/best``). Returns what was done:
    params and MACs before and after, the branch widths, and the accuracy right after pruning."""
    from .bench.profiling import count_macs, count_params
    from .loading import load_model, save_checkpoint
    from .train import RECIPES, RunExists, evaluate, saved_place, train

    if finetune_epochs > 0 and data is None:
        raise ValueError("fine-tuning needs data (or finetune_epochs=0)")
    out = Path(out)
    place = saved_place(out) if finetune_epochs > 0 else None
    if place is not None and not resume:  # refused before out/pruned is rewritten
        raise RunExists(out, place)
    resume = place is not None  # --resume with nothing to resume: start
    model = load_model(checkpoint, "torch")
    net, meta = model.net, model.meta
    example = torch.zeros(1, 3, meta.preprocess.size, meta.preprocess.size)
    before = {"params": count_params(net), "macs": count_macs(net, example)}
    prune(net, ratio, round_to=round_to)
    info: dict[str, Any] = {
        "from": str(checkpoint),
        "ratio": ratio,
        "round_to": round_to,
        "params_before": before["params"],
        "macs_before": before["macs"],
        "params": count_params(net),
        "macs": count_macs(net, example),
        "branch_widths": net.build_args["branch_widths"],
        "input_size": meta.preprocess.size,
        "accuracy_before": meta.metrics.get("accuracy"),
    }
    keep = ("classes", "preprocess", "recipe", "data", "seed")
    pruned_meta: dict[str, Any] = {k: v for k, v in meta.as_dict().items() if k in keep}
    pruned_meta.update(init=str(checkpoint), pruned=info)
    if data is not None:
        report = evaluate(net, data[1], meta.preprocess, tta=meta.tta)
        info["accuracy_pruned"] = report["accuracy"]
        pruned_meta["metrics"] = {"epoch": 0, **{k: report[k] for k in ("accuracy", "macro_f1", "loss", "n")}}
    save_checkpoint(out / "pruned", net, pruned_meta)
    if finetune_epochs > 0:
        train(
            net.build_args["name"],
            *data,
            out,
            recipe=dataclasses.replace(RECIPES["prune"], epochs=finetune_epochs),
            init=out / "pruned",
            new_head=False,
            seed=seed,
            resume=resume,
            extra_meta={"pruned": info},
            on_batch=on_batch,
        )
    return info
