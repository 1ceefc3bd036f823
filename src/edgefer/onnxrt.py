"""ONNX export of a model (or a split part) and ONNX Runtime sessions for it."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor, nn

__all__ = ["export_onnx", "ort_session", "run_onnx"]


def export_onnx(
    module: nn.Module,
    example: Tensor,
    path: str | os.PathLike,
    *,
    input_name: str = "input",
    output_name: str = "output",
    dynamic_batch: bool = True,
) -> Path:
    """Export ``module`` (in eval mode) to ONNX with torch's dynamo exporter; returns the path.

    The batch dimension is dynamic unless ``dynamic_batch=False``. The module is run once on
    ``example`` first so that size-dependent buffers (ASP/SFP's fixed maps) exist before tracing.
    """
    path = Path(path)
    module.eval()
    with torch.no_grad():
        module(example)
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    # The exporter reports progress on stdout/stderr and warns about its own internals; keep them quiet.
    quiet = contextlib.ExitStack()
    quiet.enter_context(warnings.catch_warnings())
    quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
    quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
    with quiet:
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=True,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes=dynamic_shapes,
            external_data=False,
        )
    return path


def ort_session(
    path: str | os.PathLike | bytes, threads: int | None = None, *, spin: bool = True
) -> ort.InferenceSession:
    """A CPU ONNX Runtime session for a model file or serialized bytes; ``threads`` sets intra-op threads.

    ``threads=None`` leaves ORT's default (one per core).

    ``spin=False`` stops idle worker threads from busy-waiting after each call. Use it whenever
    several sessions take turns on few cores (benchmarks, servers with several models): one
    session's spinning threads otherwise steal the cores from the next (measured here: 2x slower).
    """
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def run_onnx(session: ort.InferenceSession, x: Tensor | np.ndarray) -> np.ndarray:
    """Run a one-input, one-output session."""
    array = x.detach().cpu().numpy() if isinstance(x, Tensor) else x
    return session.run(None, {session.get_inputs()[0].name: array})[0]
