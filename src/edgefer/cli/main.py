"""The ``edgefer`` command: one entry point, one module per subcommand."""

from __future__ import annotations

import logging
import sys

import typer

from .adjust import adjust
from .crossval import crossval
from .demo import demo
from .ensemble import ensemble
from .evaluate import evaluate
from .export import export
from .models import models
from .offload_bench import offload_bench
from .predict import predict
from .profile import profile
from .prune import prune
from .serve import serve
from .train import train
from .video import video

app = typer.Typer(
    name="edgefer",
    help="Facial expression recognition on edge devices, with optional help from a cloud server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(help="Sample photos through face detection and the edge, split and cloud strategies.")(demo)
app.command(help="Every face's expression in photos (files or folders).")(predict)
app.command(help="Expressions in a video file or camera stream, with an annotated copy and FPS.")(video)
app.command(help="List the registered model configurations.")(models)
app.command(help="Params, MACs and batch-1 CPU latency per model (the paper's Table 4).")(profile)
app.command(help="Train a model on FER2013 with per-epoch checkpoints and --resume.")(train)
app.command(help="Accuracy, macro-F1, per-class accuracy and confusion matrix of a checkpoint.")(evaluate)
app.command(help="Subject-disjoint k-fold accuracy on CK+, fine-tuning from a checkpoint.")(crossval)
app.command(help="Combine trained checkpoints into one ensemble model (the cloud's larger model).")(ensemble)
app.command(help="Post-hoc logit adjustment: a checkpoint's decisions shifted towards the rare classes.")(adjust)
app.command(
    help="Export a checkpoint to ONNX or OpenVINO (FP32, FP16, INT8; whole or split), checked against PyTorch."
)(export)
app.command(help="Structured channel pruning of a ShuffleNetV2 or ResNet checkpoint, with fine-tuning.")(prune)
app.command(help="The cloud server: Open Inference Protocol (KServe v2) over HTTP/REST.")(serve)
app.command("offload-bench", help="Edge, cloud, split and auto latency per bandwidth and device (Fig. 8).")(
    offload_bench
)


def main() -> None:
    # Our own messages at INFO; libraries (onnx_ir, torch.onnx) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("edgefer").setLevel(logging.INFO)
    try:
        app()
    except ValueError as exc:  # input the library refused; its message says what and why
        typer.echo(f"edgefer: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
