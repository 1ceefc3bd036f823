"""``edgefer export``: a checkpoint as ONNX or OpenVINO IR, FP32/FP16/INT8, whole or split.

Usage:
    edgefer export --checkpoint default --format onnx --out exports/fp32
    edgefer export --format openvino --precision int8 --calibration fer2013.csv.gz --out exports/ov-int8
    edgefer export --checkpoint default --format onnx --split after=stage2 --out exports/split

The export is checked against PyTorch before it is written (see `edgefer.export`); an export that
does not match is not written, and the command fails with the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .options import CheckpointOpt, ExportFormat, FormatOpt, Precision, PrecisionOpt


def export(
    out: Annotated[Path, typer.Option(help="Folder to write the model file(s) and export.json into.")],
    checkpoint: CheckpointOpt = "default",
    fmt: FormatOpt = ExportFormat.onnx,
    precision: PrecisionOpt = Precision.fp32,
    split: Annotated[str | None, typer.Option(help="after=STAGE: write edge_head, cloud and edge_tail parts.")] = None,
    calibration: Annotated[Path | None, typer.Option(help="FER2013 CSV: Training faces calibrate INT8.")] = None,
    calibration_size: Annotated[int, typer.Option(min=16, help="How many Training faces calibrate INT8.")] = 300,
) -> None:
    """Export a checkpoint for ONNX Runtime or OpenVINO, checked against PyTorch."""

    from ..export import calibration_faces, export_model
    from ..loading import load_model

    split_after = None
    if split is not None:
        key, _, value = split.partition("=")
        if key != "after" or not value:
            raise typer.BadParameter(f"--split takes after=STAGE, got {split!r}")
        split_after = value
    faces = None
    if calibration is not None:
        from ..data import load_fer2013

        train = load_fer2013(calibration, splits=["Training"]).get("Training")
        if train is None:
            raise typer.BadParameter(f"{calibration} has no Training rows to calibrate with")
        faces = calibration_faces(train.images, calibration_size)
    model = load_model(checkpoint, "torch")
    sidecar = export_model(
        model.net,
        model.meta.as_dict(),
        out,
        fmt=str(fmt),
        precision=str(precision),
        split_after=split_after,
        faces=faces,
    )
    typer.echo(f"wrote {', '.join(sidecar['parts'].values())} to {out}")
    typer.echo(json.dumps(sidecar["check"], indent=1))
