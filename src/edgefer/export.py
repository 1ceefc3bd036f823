"""Exporting a checkpoint for deployment: ONNX or OpenVINO IR, FP32, FP16 or INT8, whole or split.

Every exported part is checked against PyTorch on sample inputs *before* anything is written:
FP32 must match to 1e-4 (max abs difference of the part's output, relative to its largest value
where that is above 1), FP16 to 1e-2 (relative), and INT8 must agree with PyTorch's prediction
(argmax) on >= 95% of the check faces.

* **FP16**: ONNX Runtime's float16 converter with FP32 inputs and outputs kept (so callers and the
  wire do not change); OpenVINO IR with FP16 weights.
* **INT8**: static post-training quantization with ONNX Runtime (QDQ), calibrated on real faces (a
  few hundred FER2013 Training images): weights int8 per channel with a symmetric scale
  (s = max|w| / 127, as in the seeds' equations), activations uint8 with a zero point. Symmetric int8
  activations were tried first: OpenVINO 2026.4's CPU plugin refuses to compile them ("any_of(
  scale.size(), OC, 1U)"), and U8 activations with S8 weights is the layout x86 kernels are fastest
  at. The OpenVINO INT8 IR is converted from the same QDQ model. Weights use 7 of their 8 bits
  (``reduce_range``): on x86 CPUs without VNNI (AVX2 only, as this project's machine since
  2026-11), ONNX Runtime multiplies u8 x s8 with VPMADDUBSW, whose int16 pair sums saturate; with
  full-range weights the shipped model's INT8 export agreed with PyTorch on 86% of faces there,
  with 7-bit weights on 97% (ONNX Runtime's quantization docs name the same cause and remedy).

Output folder: one file per part (``model`` or ``edge_head``, ``cloud``, ``edge_tail``) plus
``export.json``: classes, preprocessing, the model's build arguments, format, precision, parts,
and the check results.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data.transforms import Preprocess, center, resize_once
from .loading.exported import SIDECAR, ExportError, Runner
from .onnxrt import export_onnx

__all__ = ["FORMATS", "PRECISIONS", "ExportError", "calibration_faces", "export_model"]

FORMATS = ("onnx", "openvino")
PRECISIONS = ("fp32", "fp16", "int8")


def _parts(net: nn.Module, split_after: str | None) -> dict[str, nn.Module]:
    if split_after is None:
        return {"model": net}
    stages = list(getattr(net, "stage_names", []))
    if split_after not in stages[:-1]:
        raise ValueError(f"cannot split after {split_after!r}; split points: {stages[:-1]}")
    head, cloud, tail = net.split(after=split_after)
    return {"edge_head": head, "cloud": cloud, "edge_tail": tail}


def calibration_faces(images: np.ndarray, n: int = 300, seed: int = 0) -> np.ndarray:
    """``n`` faces drawn without replacement (in their original order) to calibrate INT8."""
    pick = np.random.default_rng(seed).choice(len(images), min(n, len(images)), replace=False)
    return images[np.sort(pick)]


def _quantize(fp32: Path, out: Path, inputs: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(inputs, max(len(inputs) // 32, 1)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"input": batch}

    prepared = out.with_suffix(".prep.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, extra_options={"WeightSymmetric": True},
        reduce_range=True,  # 7-bit weights: see the module docstring (AVX2 without VNNI saturates otherwise)
    )  # fmt: skip
    prepared.unlink()


def _to_fp16(fp32: Path, out: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    onnx.save(model, str(out))


def _to_openvino(onnx_path: Path, out: Path, fp16: bool) -> Path:
    import openvino as ov

    xml = out.with_suffix(".xml")
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=fp16)
    return xml


def _check(expected: np.ndarray, got: np.ndarray, final: bool) -> dict[str, float]:
    diff = float(np.abs(expected - got).max())
    scale = float(np.abs(expected).max()) or 1.0
    report = {"max_abs_diff": diff, "scale": scale, "relative": diff / scale}
    if final:
        report["argmax_agreement"] = float((expected.argmax(1) == got.argmax(1)).mean())
    return report


def _passes(precision: str, report: dict[str, float]) -> bool:
    if precision == "fp32":  # 1e-4, relative to the output's scale where that is above 1
        return report["max_abs_diff"] <= 1e-4 * max(1.0, report["scale"])
    if precision == "fp16":
        return report["relative"] <= 1e-2
    return report.get("argmax_agreement", 1.0) >= 0.95


def export_model(
    net: nn.Module,
    meta: dict[str, Any],
    out: str | Path,
    *,
    fmt: str = "onnx",
    precision: str = "fp32",
    split_after: str | None = None,
    faces: np.ndarray | None = None,
    check: int = 64,
) -> dict[str, Any]:
    """Export ``net`` to ``out`` and return the sidecar. ``faces`` (uint8, N x H x W) calibrate INT8 and
    feed the check; without them, random faces are used for FP32/FP16 checks and INT8 is refused."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if precision == "int8" and faces is None:
        raise ValueError("INT8 needs calibration faces (e.g. --calibration FER2013.csv.gz)")
    pre = Preprocess(**meta["preprocess"])
    if faces is None:
        faces = np.random.default_rng(0).integers(0, 256, (check, 48, 48), dtype=np.uint8)
    x = center(resize_once(faces, pre.resize), pre)
    net.eval()
    parts = _parts(net, split_after)
    # The input each part sees, in order: the face batch, then each part's output.
    inputs, outputs = {}, {}
    with torch.inference_mode():
        h = x
        for name, part in parts.items():
            inputs[name] = h.numpy()
            h = part(h)
            outputs[name] = h.numpy()
    # INT8 is judged on every face given (agreement on a few dozen faces is too noisy to test 95% on);
    # FP32/FP16 on the first ``check``.
    calibration, checking = slice(None), slice(None) if precision == "int8" else slice(0, min(check, len(faces)))

    out = Path(out)
    sidecar: dict[str, Any] = {
        "classes": list(meta["classes"]), "preprocess": pre.as_dict(), "build": net.build_args,
        "format": fmt, "precision": precision, "split_after": split_after, "parts": {}, "check": {},
        "stages": list(getattr(net, "stage_names", [])),
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        for name, part in parts.items():
            example = torch.from_numpy(inputs[name][:1])
            onnx_path = export_onnx(part, example, staged / f"{name}.fp32.onnx")
            target = staged / f"{name}.onnx"
            if precision == "fp32":
                shutil.copy(onnx_path, target)
            elif precision == "fp16":
                _to_fp16(onnx_path, target)
            else:
                _quantize(onnx_path, target, inputs[name][calibration])
            final_path = _to_openvino(target, staged / name, precision == "fp16") if fmt == "openvino" else target
            runtime = "openvino" if fmt == "openvino" else "onnxruntime"
            got = Runner(final_path, runtime=runtime)(inputs[name][checking])
            report = _check(outputs[name][checking], got, final=name in ("model", "edge_tail"))
            sidecar["check"][name] = report
            # INT8 parts before the last are judged by the final prediction, below.
            if (precision != "int8" or name in ("model", "edge_tail")) and not _passes(precision, report):
                raise ExportError(f"the exported {name} ({fmt}, {precision}) does not match PyTorch: {report}")
            sidecar["parts"][name] = final_path.name
        if precision == "int8" and split_after is not None:  # the chain of quantized parts
            runners = [
                Runner(staged / sidecar["parts"][n], runtime="openvino" if fmt == "openvino" else "onnxruntime")
                for n in parts
            ]
            h = inputs["edge_head"][checking]
            for run in runners:
                h = run(h)
            agreement = float((h.argmax(1) == outputs["edge_tail"][checking].argmax(1)).mean())
            sidecar["check"]["chain_argmax_agreement"] = agreement
            if agreement < 0.95:
                raise ExportError(f"the quantized split agrees with PyTorch on only {agreement:.1%} of faces")
        out.mkdir(parents=True, exist_ok=True)
        for name in parts:
            for file in staged.glob(f"{name}.*"):
                if ".fp32." not in file.name and (file.name == sidecar["parts"][name] or file.suffix == ".bin"):
                    shutil.copy(file, out / file.name)
        (out / SIDECAR).write_text(json.dumps(sidecar, indent=2))
    return sidecar
