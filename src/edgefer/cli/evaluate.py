"""``edgefer evaluate``: accuracy, macro-F1, per-class accuracy and the confusion matrix.

Usage:
    edgefer evaluate --checkpoint default --data ../shared/data/fer2013/fer2013.csv.gz
    edgefer evaluate --checkpoint runs/full/best --data fer2013.csv.gz --split PublicTest --json --plot cm.png
    edgefer evaluate --checkpoint runs/ck/best --data my_faces/   # sub-folders named after the classes
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..data import FaceData, load_fer2013, load_image_folder
from ..train import evaluate as evaluate_model
from ..train.checkpoint import preprocess_of


def load_split(data: Path, split: str | None, classes: list[str]) -> FaceData:
    """A FER2013 split (CSV or Kaggle folders), or a folder with one sub-folder per checkpoint class."""
    if data.is_file() or (data / "train").is_dir() or (data / "test").is_dir():
        splits = load_fer2013(data)
        name = split or next((s for s in ("PublicTest", "test") if s in splits), None)
        if name not in splits:
            raise typer.BadParameter(f"{data} has splits {sorted(splits)}; choose one with --split")
        return splits[name]
    return load_image_folder(data, classes)


def evaluate(
    data: Annotated[Path, typer.Option(help="FER2013 CSV/.gz, Kaggle folders, or a class-per-folder root.")],
    checkpoint: Annotated[str, typer.Option(help="Checkpoint folder, or 'default' for the shipped model.")] = "default",
    split: Annotated[str | None, typer.Option(help="Split to evaluate (default: PublicTest or test).")] = None,
    tta: Annotated[bool, typer.Option(help="Average with the mirrored image (as the recipe did).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the confusion matrix as a PNG.")] = None,
    runtime: Annotated[
        str, typer.Option(help="torch (a checkpoint), or onnxruntime / openvino (an export).")
    ] = "torch",
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads.")] = None,
) -> None:
    """Accuracy, macro-F1, per-class accuracy and confusion matrix of a checkpoint on a dataset."""
    from ..export import load_model

    if threads:
        import torch

        torch.set_num_threads(threads)
    model, meta = load_model(checkpoint, runtime, threads)
    test = load_split(data, split, meta["classes"])
    if list(test.classes) != list(meta["classes"]):
        raise typer.BadParameter(f"the data's classes {test.classes} differ from the model's {meta['classes']}")
    report = evaluate_model(model, test, preprocess_of(meta), tta_flip=tta)
    report["data"] = test.source
    if plot is not None:
        from ..plots import plot_confusion

        title = f"{meta['build']['name']} ({runtime}) on {Path(test.source).name}: {report['accuracy']:.2%}"
        plot_confusion(report["confusion"], test.classes, plot, title)
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{test.source}: n={report['n']}  accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}")
    width = max(len(c) for c in test.classes)
    for name, row in zip(test.classes, report["confusion"], strict=True):
        stats = report["per_class"][name]
        cells = " ".join(f"{v:5d}" for v in row)
        typer.echo(f"  {name:<{width}}  acc {stats['accuracy']:.3f}  n={stats['n']:<5d} {cells}")
