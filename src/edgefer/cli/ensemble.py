"""``edgefer ensemble``: several trained checkpoints as one model (the cloud's larger model).

Usage:
    edgefer ensemble runs/long/resnet18_48/last runs/long/shufflenet/last runs/long/shufflenet_asp_sfp/last \\
        --out runs/large --data ../shared/data/fer2013/fer2013.csv.gz

The ensemble averages its members' probabilities; each member keeps its own input size (the
ensemble's input is the largest, and the others get it resized). By default (``--mirror``) each
member also sees the mirrored face, inside the model: the server predicts one crop at a time, so
this is how flip TTA reaches ``full-large`` (twice the compute, in the cloud). A mirrored ensemble
is unchanged by flipping its input, so it is scored without further TTA.

``--weights float16`` stores the weights at half precision (half the size on disk), ``--weights int8``
the convolutions and linear layers at 8 bits with a scale per output channel (a quarter), ``int4`` at
4 bits (an eighth); however stored, they load back into a float32 model, and the score ``--data`` gives
is that of the stored weights.
It is saved as an ordinary checkpoint, so ``evaluate``, ``export``, ``serve --large`` and the edge
runtime take it. With ``--data`` it is scored on PublicTest and the score is stored with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .options import TTA, TTAOpt, WeightsDtype


def ensemble(
    members: Annotated[list[str], typer.Argument(help="Checkpoint folders (or 'default') to combine.")],
    out: Annotated[Path, typer.Option(help="Where to write the ensemble's checkpoint.")],
    data: Annotated[Path | None, typer.Option(help="FER2013 CSV: score the ensemble on PublicTest.")] = None,
    tta: TTAOpt = TTA.flip,
    mirror: Annotated[
        bool, typer.Option(help="Each member also sees the mirrored face (flip TTA inside the model, for the server).")
    ] = True,
    weights: Annotated[
        WeightsDtype,
        typer.Option(
            help="Store the weights as float32, float16 (half the size), int8 (a quarter) or int4 (an eighth); "
            "all load as float32."
        ),
    ] = WeightsDtype.float32,
) -> None:
    """Combine checkpoints into one ensemble checkpoint (averaged probabilities)."""
    import torch

    from ..data import load_test_split
    from ..loading import load_model, make_ensemble, round_as_stored, save_checkpoint, sole_member
    from ..train import evaluate

    if len(members) < 2 and not mirror:
        raise typer.BadParameter("an ensemble needs at least two members (or one with --mirror)")
    if mirror and tta == TTA.flip:
        tta = TTA.none  # the mirrored ensemble is flip-invariant: flip TTA would give the same scores at twice the cost
    models = [load_model(m, "torch") for m in members]
    classes = models[0].classes
    for path, model in zip(members, models, strict=True):
        if model.classes != classes:
            raise typer.BadParameter(f"{path} predicts {model.classes}, {members[0]} {classes}")
        if (model.preprocess.mean, model.preprocess.std) != (models[0].preprocess.mean, models[0].preprocess.std):
            raise typer.BadParameter(f"{path} normalises differently from {members[0]}: train them on the same data")
    largest = max(models, key=lambda m: m.preprocess.size)
    # a one-member ensemble (default-large) joins as its network: the new ensemble's own --mirror is its TTA
    net = make_ensemble([sole_member(m.net) for m in models], [m.preprocess.size for m in models], mirror=mirror)
    meta = {
        "classes": classes,
        "preprocess": largest.preprocess.as_dict(),
        "recipe": {"tta": str(tta), "name": "ensemble"},
        "members": [str(m) for m in members],
        "member_metrics": [m.meta.metrics for m in models],
    }
    dtype = getattr(torch, weights.value)
    round_as_stored(net, dtype)  # so that the score below is the stored model's
    if data is not None:
        report = evaluate(net, load_test_split(data, classes), largest.preprocess, tta=str(tta))
        meta["metrics"] = {k: report[k] for k in ("accuracy", "macro_f1", "loss", "n")}
        typer.echo(json.dumps(meta["metrics"]))
    save_checkpoint(out, net, meta, dtype=dtype)
    size = (out / "model.safetensors").stat().st_size
    typer.echo(f"ensemble of {len(members)} -> {out} ({size / 1e6:.1f} MB of {weights.value} weights)")
