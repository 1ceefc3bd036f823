"""``edgefer predict``: every face's expression in photos.

Usage:
    edgefer predict photo.jpg
    edgefer predict photos/ --json > faces.jsonl
    edgefer predict photos/ --csv faces.csv --annotate annotated/ --detector dlib
    edgefer predict photo.jpg --strategy split --cloud http://127.0.0.1:8000

Each file is reported on its own: a file that cannot be read, or has no faces, gets a message on
stderr and the batch carries on. The exit code is 1 if any file could not be read, else 0.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .options import (
    CheckpointOpt,
    CloudOpt,
    Detector,
    DetectorOpt,
    EscalateRateOpt,
    EscalateThresholdOpt,
    Runtime,
    RuntimeOpt,
    Strategy,
    StrategyOpt,
    ThreadsOpt,
    TokenFileOpt,
    make_pipeline,
)


def _relative(path: Path, roots: list[Path]) -> Path:
    """Where an input's annotated copy goes: its path under the folder it came from, or its name."""
    for root in roots:
        if root.is_dir() and path.is_relative_to(root):
            return Path(root.resolve().name) / path.relative_to(root)
    return Path(path.name)


def predict(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders (searched recursively).")],
    checkpoint: CheckpointOpt = "default",
    detector: DetectorOpt = Detector.retinaface,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per image.")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write one row per face to this CSV.")] = None,
    annotate: Annotated[Path | None, typer.Option(help="Write copies with boxes and labels into this folder.")] = None,
    strategy: StrategyOpt = Strategy.edge,
    cloud: CloudOpt = None,
    token_file: TokenFileOpt = None,
    escalate_rate: EscalateRateOpt = None,
    escalate_threshold: EscalateThresholdOpt = None,
    threads: ThreadsOpt = None,
    runtime: RuntimeOpt = Runtime.auto,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Faces classified together (of consecutive photos); one forward pass.")
    ] = 32,
) -> None:
    """Detect every face in each image and print its expression."""
    from PIL import Image
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..analysis import iter_photo_results
    from ..annotate import draw_results
    from ..photos import iter_photos

    files = list(iter_photos(paths))
    if not files:
        raise typer.BadParameter(f"no image files in {', '.join(map(str, paths))}")
    pipeline = make_pipeline(
        checkpoint, detector, strategy, cloud, token_file, threads, runtime,
        escalate_rate=escalate_rate, escalate_threshold=escalate_threshold,
    )  # fmt: skip
    classes = pipeline.runner.classes
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        transient=True, disable=len(files) < 2 or not sys.stderr.isatty(),
    )  # fmt: skip
    failed = 0
    with contextlib.ExitStack() as stack:  # the CSV and the cloud connection close on any exit
        stack.callback(pipeline.runner.close)
        writer = None
        if csv_path is not None:
            writer = csv.writer(stack.enter_context(csv_path.open("w", newline="")))
            writer.writerow(["file", "face", "x1", "y1", "x2", "y2", "label", "detection_score", *classes])
        stack.enter_context(progress)
        task = progress.add_task("photos", total=len(files))
        for photo in iter_photo_results(files, pipeline, batch_size=batch_size):
            progress.update(task, description=photo.name[-40:])
            if photo.error is not None:
                failed += 1
                typer.echo(f"edgefer: error: {photo.error}", err=True)
                if as_json:
                    typer.echo(json.dumps({"file": photo.name, "error": photo.error.reason}))
                progress.advance(task)
                continue
            faces = photo.faces
            if not faces:
                typer.echo(f"edgefer: warning: {photo.name}: no faces found", err=True)
            if as_json:
                typer.echo(json.dumps({"file": photo.name, "faces": [f.as_dict() for f in faces]}))
            else:
                found = "; ".join(f"{f.label} {f.scores[f.label]:.0%} at {list(f.box)}" for f in faces) or "no faces"
                typer.echo(f"{photo.name}: {found}")
            if writer is not None:
                for i, f in enumerate(faces):
                    scores = (f"{f.scores[c]:.4f}" for c in classes)
                    writer.writerow([photo.name, i, *f.box, f.label, f"{f.detection_score:.4f}", *scores])
            if annotate is not None:
                out = annotate / _relative(photo.source, paths)
                out = out.with_suffix(out.suffix if out.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png")
                out.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(draw_results(photo.rgb, faces)).save(out)
            progress.advance(task)
    if failed:
        typer.echo(f"edgefer: {failed} of {len(files)} files could not be read", err=True)
        raise typer.Exit(1)
