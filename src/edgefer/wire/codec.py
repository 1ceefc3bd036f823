"""How a feature map travels between edge and cloud: FP32, FP16, or INT8 with a scale.

INT8 is symmetric per-tensor quantisation, ``q = round(x / scale)`` clipped to [-127, 127] with
``scale = max|x| / 127`` (as in the residual-VGG19 seed's post-training quantisation); the scale
travels as the tensor parameter ``scale``. Decoding always gives float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import InvalidInput
from .protocol import TensorData

__all__ = ["CODECS", "decode_feature", "encode_feature"]

CODECS = ("fp32", "fp16", "int8")
FEATURE_MAX = float(np.finfo(np.float16).max)  # 65504: a map must fit every codec (real ones stay far below)


def encode_feature(name: str, x: np.ndarray, codec: str) -> TensorData:
    """A float feature map as a v2 tensor in ``codec``."""
    x = np.asarray(x, dtype=np.float32)
    if codec == "fp32":
        return TensorData(name, x)
    if codec == "fp16":
        return TensorData(name, x.astype(np.float16))
    if codec == "int8":
        peak = float(np.abs(x).max()) if x.size else 0.0
        scale = peak / 127 if peak > 0 else 1.0
        q = np.clip(np.rint(x / scale), -127, 127).astype(np.int8)
        return TensorData(name, q, {"scale": scale})
    raise ValueError(f"unknown codec {codec!r}; expected one of {CODECS}")


def decode_feature(tensor: TensorData | np.ndarray, parameters: Mapping[str, Any] | None = None) -> np.ndarray:
    """The float32 feature map from an FP32, FP16 or INT8 (+ ``scale``) tensor."""
    if isinstance(tensor, TensorData):
        data, parameters = tensor.data, tensor.parameters
    else:
        data, parameters = tensor, parameters or {}
    if data.dtype == np.int8:
        scale = parameters.get("scale")
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not np.isfinite(scale) or scale <= 0:
            raise InvalidInput(f"an INT8 feature map needs a positive finite 'scale' parameter, got {str(scale)[:40]}")
        if scale > np.finfo(np.float32).max / 127:
            raise InvalidInput(f"an INT8 scale of {scale:g} overflows float32")
        return data.astype(np.float32) * np.float32(scale)
    if data.dtype in (np.float16, np.float32):
        out = data.astype(np.float32)
        if not np.isfinite(out).all():
            raise InvalidInput("the feature map holds NaN or Inf")
        if out.size and np.abs(out).max() > FEATURE_MAX:
            raise InvalidInput(f"the feature map holds values beyond +-{FEATURE_MAX:g}, the range every codec carries")
        return out
    raise InvalidInput(f"a feature map must be FP32, FP16 or INT8, got {data.dtype}")
