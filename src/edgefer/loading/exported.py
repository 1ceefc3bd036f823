"""Exported models (``edgefer export`` folders): each part run by ONNX Runtime or OpenVINO.

An export folder holds one file per part (``model``, or ``edge_head``, ``cloud``, ``edge_tail``)
and ``export.json`` (classes, preprocessing, build arguments, format, precision, split point,
stage names, check results). :func:`read_export` opens it; :class:`ExportedNet` chains parts so that
they run where a PyTorch module would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..onnxrt import ort_session

__all__ = ["RUNTIMES", "SIDECAR", "ExportError", "ExportedNet", "Runner", "read_export"]

SIDECAR = "export.json"
RUNTIMES = ("onnxruntime", "openvino")


class ExportError(ValueError):
    """An export that failed its check against PyTorch, or an unusable export folder."""


class Runner:
    """One exported part, run with ONNX Runtime or OpenVINO: ``runner(x: np.ndarray) -> np.ndarray``."""

    def __init__(self, path: Path, *, runtime: str, threads: int | None = None) -> None:
        self.path, self.runtime = path, runtime
        if runtime == "onnxruntime":
            if path.suffix != ".onnx":
                raise ExportError(f"{path}: ONNX Runtime needs an .onnx file")
            self.session = ort_session(path, threads, spin=False)
            self.input = self.session.get_inputs()[0].name
        elif runtime == "openvino":
            import openvino as ov

            # f32 execution: the CPU plugin otherwise picks bf16 on CPUs that have it, which is a
            # different model than the one checked; FP16 IRs compress only the weights.
            config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
            self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        else:
            raise ValueError(f"unknown runtime {runtime!r}; expected onnxruntime or openvino")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.runtime == "onnxruntime":
            return self.session.run(None, {self.input: x})[0]
        return self.compiled(x)[0]


def read_export(
    folder: str | Path, runtime: str | None = None, threads: int | None = None
) -> tuple[dict[str, Runner], dict[str, Any]]:
    """The runners of an export folder's parts and its sidecar; clear errors for a bad folder."""
    folder = Path(folder)
    if not (folder / SIDECAR).is_file():
        raise ExportError(f"{folder}: not an export (no {SIDECAR}); write one with `edgefer export`")
    try:
        sidecar = json.loads((folder / SIDECAR).read_text())
        names = dict(sidecar["parts"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ExportError(f"{folder / SIDECAR}: unreadable ({exc})") from None
    runtime = runtime or ("openvino" if sidecar.get("format") == "openvino" else "onnxruntime")
    runners = {}
    for name, file in names.items():
        path = folder / file
        if not path.is_file():
            raise ExportError(f"{path}: missing (listed in {SIDECAR})")
        try:
            runners[name] = Runner(path, runtime=runtime, threads=threads)
        except ExportError:
            raise
        except Exception as exc:  # the runtimes raise their own types for corrupt files
            raise ExportError(f"{path}: {runtime} cannot load it ({type(exc).__name__}: {str(exc)[:300]})") from None
    return runners, sidecar


class ExportedNet(nn.Module):
    """An export's parts chained, usable where a PyTorch model is (evaluation, the edge runtime)."""

    def __init__(self, runners: dict[str, Runner]) -> None:
        super().__init__()
        self.runners = runners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.detach().cpu().numpy()
        for run in self.runners.values():
            h = run(h)
        return torch.from_numpy(np.asarray(h, dtype=np.float32))
