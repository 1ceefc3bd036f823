"""Options shared by the user-facing commands (predict, video, demo), declared once."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Detector(StrEnum):
    retinaface = "retinaface"
    dlib = "dlib"
    haar = "haar"


class Strategy(StrEnum):
    edge = "edge"
    split = "split"
    cloud = "cloud"
    auto = "auto"


CheckpointOpt = Annotated[
    str, typer.Option(help="Checkpoint folder, or 'default' for the shipped model.", rich_help_panel="Model")
]
DetectorOpt = Annotated[Detector, typer.Option(help="Face detector.", rich_help_panel="Model")]
StrategyOpt = Annotated[
    Strategy,
    typer.Option(
        help="Where the network runs: this device, split with the cloud, the cloud, or auto (per face, fastest).",
        rich_help_panel="Cloud",
    ),
]
CloudOpt = Annotated[
    str | None, typer.Option("--cloud", help="Cloud server URL (for split and cloud).", rich_help_panel="Cloud")
]
TokenFileOpt = Annotated[
    Path | None, typer.Option(help="File holding the cloud's bearer token.", rich_help_panel="Cloud")
]
ThreadsOpt = Annotated[int | None, typer.Option(min=1, help="CPU threads (default: all cores).")]


class Runtime(StrEnum):
    torch = "torch"
    onnxruntime = "onnxruntime"
    openvino = "openvino"


RuntimeOpt = Annotated[
    Runtime,
    typer.Option(
        help="torch (a checkpoint) or onnxruntime / openvino (an `edgefer export` folder).", rich_help_panel="Model"
    ),
]


def make_pipeline(
    checkpoint: str,
    detector: Detector,
    strategy: Strategy,
    cloud: str | None,
    token_file: Path | None,
    threads: int | None,
    runtime: Runtime = Runtime.torch,
):
    """The FacePipeline the options describe; raises typer.BadParameter on inconsistent options."""
    import torch

    from ..edge.runtime import EdgeRunner
    from ..faces import get_detector
    from ..pipeline import FacePipeline

    if strategy is not Strategy.edge and not cloud:
        raise typer.BadParameter(
            f"--strategy {strategy.value} needs --cloud URL (a server started with `edgefer serve`)"
        )
    token = token_file.read_text().strip() if token_file else None
    if threads:
        torch.set_num_threads(threads)
    runner = EdgeRunner(
        checkpoint, strategy.value, cloud_url=cloud, token=token, runtime=runtime.value, threads=threads
    )
    kwargs = {"threads": threads} if detector is Detector.retinaface else {}
    return FacePipeline(runner, get_detector(detector.value, **kwargs))
