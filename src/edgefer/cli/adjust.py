"""``edgefer adjust``: post-hoc logit adjustment of a checkpoint, written as a new checkpoint.

Usage:
    edgefer adjust --checkpoint runs/long/shufflenet_asp_sfp_pipeline/last --tau 0.25 \\
        --data ../shared/data/fer2013/fer2013.csv.gz --out runs/adjusted

The class prior is that of the data's training split; ``tau * log prior`` is subtracted from the
final layer's bias (:mod:`edgefer.train.adjust`), so the output is an ordinary checkpoint. Its
``model.json`` records ``logit_adjust`` (tau, prior, source) and its score on the test split;
confidence quantiles for escalation are dropped, since the margins change (``edgefer evaluate
--calibrate`` stores new ones). An ensemble (such as ``default-large``) is adjusted after its
members' probabilities are averaged, and the weights are stored as the source stored them (float16,
INT8, INT4).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .options import TTA, CheckpointOpt, TTAOpt


def adjust(
    tau: Annotated[float, typer.Option(min=0.0, help="Strength: the logits lose tau * log(prior); 0 changes nothing.")],
    data: Annotated[
        Path,
        typer.Option(help="FER2013 CSV or Kaggle folders: its training split gives the prior."),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the adjusted checkpoint.")],
    checkpoint: CheckpointOpt = "default",
    tta: TTAOpt = TTA.flip,
) -> None:
    """Shift a checkpoint's decisions towards the rare classes by its training prior (a new checkpoint)."""
    import torch

    from ..data import fer2013_train_val
    from ..loading import load_checkpoint, resolve, round_as_stored, save_checkpoint
    from ..loading.checkpoint import preprocess_of
    from ..train import evaluate
    from ..train.adjust import adjust_logits
    from ..train.targets import log_prior

    net, meta = load_checkpoint(resolve(checkpoint))
    classes = list(meta["classes"])
    train, test = fer2013_train_val(data)
    if list(train.classes) != classes:
        raise typer.BadParameter(f"the data's classes {list(train.classes)} differ from the model's {classes}")
    prior = log_prior(train.labels, len(classes))
    adjust_logits(net, prior, tau)
    stored_as = getattr(torch, meta["weights_dtype"]) if meta.get("weights_dtype") else None  # as `ensemble` names it
    if stored_as is not None:
        round_as_stored(net, stored_as)  # the score below is then the stored model's
    report = evaluate(net, test, preprocess_of(meta), tta=str(tta))
    meta = {k: v for k, v in meta.items() if k not in ("escalation", "best", "build")}
    meta["metrics"] = {k: report[k] for k in ("accuracy", "macro_f1", "loss", "n")} | {"tta": str(tta)}
    meta["logit_adjust"] = {
        "tau": tau,
        "prior": dict(zip(classes, prior.exp().tolist(), strict=True)),
        "from": str(checkpoint),
        "data": train.source,
    }
    save_checkpoint(out, net, meta, dtype=stored_as)
    typer.echo(json.dumps(meta["metrics"]))
    typer.echo(f"adjusted (tau {tau}) -> {out}")
