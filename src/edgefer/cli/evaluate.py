"""``edgefer evaluate``: accuracy, macro-F1, per-class accuracy and the confusion matrix.

Usage:
    edgefer evaluate --checkpoint default --data ../shared/data/fer2013/fer2013.csv.gz
    edgefer evaluate --checkpoint runs/full/best --data fer2013.csv.gz --split PublicTest --json --plot cm.png
    edgefer evaluate --checkpoint runs/ck/best --data my_faces/   # sub-folders named after the classes
    edgefer evaluate --checkpoint default --escalate default-large --escalate-rate 0.25 --data fer2013.csv.gz --json

With ``--escalate``, the escalation policy is scored locally (no server): each face is answered by
the checkpoint unless its confidence is under the threshold, then by the ``--escalate`` model; the
report adds ``escalated`` (the share of faces sent) and the threshold. ``--calibrate`` stores the
checkpoint's confidence quantiles on this data in its ``model.json``, so that a rate can be turned
into a threshold on the device.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .options import (
    TTA,
    CheckpointOpt,
    ConfidenceMeasure,
    EscalateRateOpt,
    EscalateThresholdOpt,
    Runtime,
    RuntimeOpt,
    ThreadsOpt,
    TTAOpt,
)


def evaluate(
    data: Annotated[Path, typer.Option(help="FER2013 CSV/.gz, Kaggle folders, or a class-per-folder root.")],
    checkpoint: CheckpointOpt = "default",
    split: Annotated[str | None, typer.Option(help="Split to evaluate (default: PublicTest or test).")] = None,
    tta: TTAOpt = TTA.flip,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the confusion matrix as a PNG.")] = None,
    runtime: RuntimeOpt = Runtime.auto,
    threads: ThreadsOpt = None,
    escalate: Annotated[
        str | None, typer.Option(help="Score escalation to this (larger) model, e.g. default-large.")
    ] = None,
    escalate_rate: EscalateRateOpt = None,
    escalate_threshold: EscalateThresholdOpt = None,
    measure: Annotated[ConfidenceMeasure, typer.Option(help="Confidence measure for escalation.")] = "margin",
    calibrate: Annotated[
        bool, typer.Option(help="Store the checkpoint's confidence quantiles on this data in its model.json.")
    ] = False,
) -> None:
    """Accuracy, macro-F1, per-class accuracy and confusion matrix of a model on a dataset."""
    import numpy as np

    from ..data import load_test_split, resize_once
    from ..escalation import calibrate as calibrate_measure
    from ..escalation import choose_threshold, confidence
    from ..loading import load_model, resolve, update_meta
    from ..train import predict_logits
    from ..train.metrics import classification_report

    if threads:
        import torch

        torch.set_num_threads(threads)
    model = load_model(checkpoint, str(runtime), threads)
    test = load_test_split(data, model.classes, split)
    if list(test.classes) != model.classes:
        raise typer.BadParameter(f"the data's classes {test.classes} differ from the model's {model.classes}")

    def logits_of(m) -> np.ndarray:
        return predict_logits(m.net, resize_once(test.images, m.preprocess.resize), m.preprocess, tta=str(tta)).numpy()

    logits = logits_of(model)
    predictions = logits.argmax(1)
    extra: dict = {}
    if calibrate:
        calibration = {**calibrate_measure(logits, str(measure)), "data": test.source, "tta": str(tta)}
        extra["calibrated"] = str(update_meta(resolve(checkpoint), escalation=calibration))
    if escalate is not None:
        if (escalate_rate is None) == (escalate_threshold is None):
            raise typer.BadParameter("--escalate needs one of --escalate-rate and --escalate-threshold")
        large = load_model(escalate, str(runtime), threads)
        if large.classes != model.classes:
            raise typer.BadParameter(f"{escalate} predicts {large.classes}, {checkpoint} {model.classes}")
        c = confidence(logits, str(measure))
        stored = model.meta.extra.get("escalation")
        usable = stored if stored and stored.get("measure") == str(measure) and not calibrate else None
        threshold, source = choose_threshold(c, threshold=escalate_threshold, rate=escalate_rate, calibration=usable)
        extra["threshold_from"] = source
        sent = c < threshold
        predictions = np.where(sent, logits_of(large).argmax(1), predictions)
        extra.update(escalated=float(sent.mean()), threshold=float(threshold), measure=str(measure), large=escalate)
    report = classification_report(test.labels, predictions, test.classes)
    report.update(data=test.source, model=str(checkpoint), tta=str(tta), **extra)
    if plot is not None:
        from ..bench.plots import plot_confusion

        title = f"{model.meta.name} ({model.runtime}) on {Path(test.source).name}: {report['accuracy']:.2%}"
        plot_confusion(report["confusion"], test.classes, plot, title)
    if as_json:
        typer.echo(json.dumps(report))
        return
    line = f"{test.source}: n={report['n']}  accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}"
    if escalate is not None:
        line += f"  escalated {report['escalated']:.1%} to {escalate}"
    typer.echo(line)
    width = max(len(c) for c in test.classes)
    for name, row in zip(test.classes, report["confusion"], strict=True):
        stats = report["per_class"][name]
        cells = " ".join(f"{v:5d}" for v in row)
        typer.echo(f"  {name:<{width}}  acc {stats['accuracy']:.3f}  n={stats['n']:<5d} {cells}")
