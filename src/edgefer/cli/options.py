"""Options shared by the commands, declared once (as enums where the set of values is closed).

Each enum is built from the library's own list (strategies, runtimes, formats, precisions, TTA
modes, detectors), so a new value there appears in every command's ``--help`` by itself.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..data.transforms import TTA_MODES
from ..edge.planner import STRATEGIES
from ..escalation import MEASURES
from ..export import FORMATS, PRECISIONS
from ..faces.detectors import DETECTORS
from ..loading import RUNTIME_CHOICES
from ..tracking import SMOOTHERS, TRACKERS


def _choices(name: str, values: tuple[str, ...] | list[str]) -> type[StrEnum]:
    return StrEnum(name, {v: v for v in values})


Detector = _choices("Detector", list(DETECTORS))
Strategy = _choices("Strategy", STRATEGIES)
Runtime = _choices("Runtime", RUNTIME_CHOICES)
ExportFormat = _choices("ExportFormat", FORMATS)
Precision = _choices("Precision", PRECISIONS)
TTA = _choices("TTA", TTA_MODES)
ConfidenceMeasure = _choices("ConfidenceMeasure", MEASURES)
Engine = _choices("Engine", ("local", "ray"))
Tracker = _choices("Tracker", (*TRACKERS, "none"))
Smoothing = _choices("Smoothing", SMOOTHERS)
WeightsDtype = _choices("WeightsDtype", ("float32", "float16", "int8", "int4"))

CheckpointOpt = Annotated[
    str,
    typer.Option(
        help="Checkpoint or export folder, or 'default' / 'default-large' for the shipped models.",
        rich_help_panel="Model",
    ),
]
RuntimeOpt = Annotated[
    Runtime,
    typer.Option(
        help="auto (what the folder holds), torch, or onnxruntime / openvino (an export; a checkpoint is "
        "exported once into the cache).",
        rich_help_panel="Model",
    ),
]
ThreadsOpt = Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all cores).")]
DetectorOpt = Annotated[Detector, typer.Option(help="Face detector.", rich_help_panel="Model")]
TTAOpt = Annotated[TTA, typer.Option(help="Test-time augmentation: none, flip (and the mirror) or tencrop.")]
FormatOpt = Annotated[ExportFormat, typer.Option("--format", help="onnx or openvino.")]
PrecisionOpt = Annotated[Precision, typer.Option(help="fp32, fp16 or int8 (int8 needs --calibration).")]
StrategyOpt = Annotated[
    Strategy,
    typer.Option(
        help="Where the network runs: this device, split with the cloud, the cloud, auto (per face, fastest), "
        "or escalate (the device, and the cloud's larger model for the faces it is unsure of).",
        rich_help_panel="Cloud",
    ),
]
CloudOpt = Annotated[
    str | None,
    typer.Option("--cloud", help="Cloud server URL (for every strategy but edge).", rich_help_panel="Cloud"),
]
TokenFileOpt = Annotated[
    Path | None, typer.Option(help="File holding the cloud's bearer token.", rich_help_panel="Cloud")
]
EscalateRateOpt = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="escalate: the share of faces to send (a threshold from the model's stored calibration).",
        rich_help_panel="Cloud",
    ),
]
EscalateThresholdOpt = Annotated[
    float | None,
    typer.Option(help="escalate: send faces whose confidence is below this.", rich_help_panel="Cloud"),
]


def read_token(token_file: Path | None) -> str | None:
    """The bearer token in ``token_file`` (None without one); a clear error for a missing or empty file."""
    if token_file is None:
        return None
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {token_file}: {exc.strerror or exc}", param_hint="--token-file"
        ) from None
    if not token:
        raise typer.BadParameter(f"{token_file} is empty", param_hint="--token-file")
    return token


def make_pipeline(
    checkpoint: str,
    detector: str,
    strategy: str,
    cloud: str | None,
    token_file: Path | None,
    threads: int | None,
    runtime: str = "auto",
    *,
    escalate_rate: float | None = None,
    escalate_threshold: float | None = None,
    classifier_threads: int | None = None,
):
    """The FacePipeline the options describe; raises typer.BadParameter on inconsistent options.

    ``threads`` is the detector's and (unless ``classifier_threads`` is given) the classifier's."""
    import torch

    from ..edge import EdgeRunner
    from ..faces import get_detector
    from ..pipeline import FacePipeline

    if strategy != "edge" and not cloud:
        raise typer.BadParameter(f"--strategy {strategy} needs --cloud URL (a server started with `edgefer serve`)")
    if strategy == "escalate" and escalate_rate is None and escalate_threshold is None:
        escalate_rate = 0.25
    token = read_token(token_file)
    if classifier_threads or threads:
        torch.set_num_threads(classifier_threads or threads)
    runner = EdgeRunner(
        checkpoint,
        strategy=str(strategy),
        cloud_url=cloud,
        token=token,
        runtime=str(runtime),
        threads=classifier_threads or threads,
        escalate_rate=escalate_rate if strategy == "escalate" else None,
        escalate_threshold=escalate_threshold if strategy == "escalate" else None,
    )
    kwargs = {"threads": threads} if detector == "retinaface" else {}
    return FacePipeline(runner, detector=get_detector(str(detector), **kwargs))
