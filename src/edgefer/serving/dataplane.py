"""The models a cloud server offers, and the v2 operations on them, kept apart from HTTP.

From one checkpoint the server offers:

* ``split-stage2``: the cloud part of the paper's split. Input ``feature`` (N, C, h, w) as FP32,
  FP16 or INT8 (+ ``scale``); output ``feature`` after the attention modules, in the input's
  encoding unless the request's ``codec`` parameter (fp32, fp16, int8) asks for another.
* ``full``: the whole model, for the "cloud" strategy; ``full-large`` the same for the larger
  cloud model (``escalate``), when the server has one. Input ``image``: UINT8 grayscale faces
  (N, H, W) of any size, or BYTES (N,) holding encoded images (PNG, JPEG, ...), prepared exactly
  as in training; output ``logits`` (N, classes), FP32.
* ``suffix-<stage>``: everything after ``<stage>`` (any split point), for splits where the cloud
  returns logits. Input ``feature`` as above; output ``logits``.

Responses carry the server-side compute time (``compute_ms``) and the batch it ran in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..data.transforms import center, resize_once
from ..loading import LoadedModel
from ..wire.codec import CODECS, decode_feature, encode_feature
from ..wire.errors import InvalidInput, ModelNotFound, PayloadTooLarge
from ..wire.images import decode_image
from ..wire.names import FULL, FULL_LARGE, split_model, suffix_model
from ..wire.protocol import Message, TensorData
from .batching import DynamicBatcher
from .limits import ServerLimits

__all__ = ["DataPlane", "ServedModel", "full_model", "served_models"]

FEATURE_TYPES = ("FP32", "FP16", "INT8")


@dataclass
class ServedModel:
    name: str
    run: Any  # numpy batch -> numpy batch
    input_name: str
    input_datatypes: tuple[str, ...]
    input_shape: tuple[int, ...]  # per sample; -1 = any size
    output_name: str
    output_shape: tuple[int, ...]
    description: str = ""
    batcher: DynamicBatcher | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        """What another process needs to offer this model without running it (the Ray engine's ingress)."""
        fields = ("name", "input_name", "input_datatypes", "input_shape", "output_name", "output_shape", "description")
        return {k: getattr(self, k) for k in fields}

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": ["1"],
            "platform": "edgefer_pytorch",
            "inputs": [
                {"name": self.input_name, "datatype": self.input_datatypes[0], "shape": [-1, *self.input_shape]}
            ],
            "outputs": [{"name": self.output_name, "datatype": "FP32", "shape": [-1, *self.output_shape]}],
            "parameters": {"accepted_datatypes": list(self.input_datatypes), "description": self.description},
        }


def _module_runner(module: nn.Module):
    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    return run


def full_model(name: str, model: LoadedModel) -> ServedModel:
    """A model that takes whole faces (UINT8 pixels or encoded images) and returns logits, served as ``name``."""
    pre = model.preprocess

    def run_full(images: np.ndarray) -> np.ndarray:
        if images.dtype == object:  # images decoded by _validate, each resized on its own (sizes may differ)
            resized = torch.cat([resize_once(item[None], pre.resize) for item in images])
        else:
            resized = resize_once(images, pre.resize)
        return model(center(resized, pre)).numpy()

    return ServedModel(
        name,
        run_full,
        "image",
        ("UINT8", "BYTES"),
        (-1, -1),
        "logits",
        (len(model.classes),),
        f"grayscale faces -> logits ({model.meta.name}, {model.runtime})",
    )


def _stage_shapes(model: LoadedModel) -> dict[str, tuple[int, ...]]:
    """The output shape (C, h, w) of every stage this model can be cut after."""
    size = model.preprocess.size
    x = torch.zeros(1, 3, size, size)
    shapes = {}
    with torch.inference_mode():
        if model.stagewise:
            for name in model.stage_names:
                x = model.stage(name)(x)
                shapes[name] = tuple(x.shape[1:])
        else:
            for after in model.meta.split_points:
                shapes[after] = tuple(model.split(after)[0](x).shape[1:])
    return shapes


def served_models(
    model: LoadedModel, *, large: LoadedModel | None = None, full: LoadedModel | None = None
) -> dict[str, ServedModel]:
    """Every model the server offers (see the module docstring): the splits from ``model`` (suffixes need
    PyTorch), ``full`` from ``full`` (the same network on another runtime, e.g. ONNX Runtime) or else
    from ``model``, and ``full-large`` from ``large`` when given."""
    if full is not None and full.classes != model.classes:
        raise ValueError(f"the full model predicts {full.classes}, the model {model.classes}")
    models = {FULL: full_model(FULL, full or model)}
    if large is not None:
        if large.classes != model.classes:
            raise ValueError(f"the large model predicts {large.classes}, the model {model.classes}")
        models[FULL_LARGE] = full_model(FULL_LARGE, large)
    shapes = _stage_shapes(model)
    if "stage2" in model.meta.split_points:
        _, cloud, _ = model.split(after="stage2")
        models[split_model("stage2")] = ServedModel(
            split_model("stage2"),
            _module_runner(cloud),
            "feature",
            FEATURE_TYPES,
            shapes["stage2"],
            "feature",
            shapes["stage2"],
            "the paper's split: Stage2 map -> attention (ASP, SFP) -> map",
        )
    if model.stagewise:
        last = model.stage_names[-1]
        for stage in model.stage_names[:-1]:
            _, suffix, _ = model.split(after=stage, until=last)
            models[suffix_model(stage)] = ServedModel(
                suffix_model(stage),
                _module_runner(suffix),
                "feature",
                FEATURE_TYPES,
                shapes[stage],
                "logits",
                (len(model.classes),),
                f"the map after {stage} -> logits",
            )
    return models


class DataPlane:
    """Health, metadata, repository index and inference, independent of the transport.

    ``validate`` checks a request against the model and the server's limits and prepares its input
    (it decodes images, so the app runs it in a worker thread); ``infer`` batches and runs it.
    """

    def __init__(
        self,
        models: dict[str, ServedModel],
        *,
        max_batch_size: int = 8,
        max_delay_ms: float = 2.0,
        limits: ServerLimits | None = None,
        batcher: Callable[[ServedModel], Any] | None = None,
    ) -> None:
        self.models = models
        self.max_batch_size, self.max_delay_ms = max_batch_size, max_delay_ms
        self.limits = limits or ServerLimits()
        self._make_batcher = batcher or self._local_batcher
        self._ready = False

    def _local_batcher(self, model: ServedModel) -> DynamicBatcher:
        return DynamicBatcher(model.run, max_batch_size=self.max_batch_size, max_delay_ms=self.max_delay_ms)

    async def start(self) -> None:
        for model in self.models.values():
            model.batcher = self._make_batcher(model)
            await model.batcher.start()
        self._ready = True

    async def stop(self) -> None:
        self._ready = False
        await asyncio.gather(*(m.batcher.stop() for m in self.models.values() if m.batcher is not None))

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._ready

    def model(self, name: str) -> ServedModel:
        if name not in self.models:
            raise ModelNotFound(f"unknown model {name!r}; this server has {sorted(self.models)}")
        return self.models[name]

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "edgefer", "version": __version__, "extensions": ["binary_tensor_data", "model_repository"]}

    def repository_index(self) -> list[dict[str, str]]:
        state = "READY" if self._ready else "UNAVAILABLE"
        return [{"name": name, "version": "1", "state": state} for name in sorted(self.models)]

    def validate(self, model: ServedModel, request: Message) -> tuple[np.ndarray, str]:
        """The model's input from a request, and the codec its answer goes back in; every client mistake
        is an InvalidInput (400) or PayloadTooLarge (413)."""
        limits = self.limits
        if len(request.tensors) != 1:
            raise InvalidInput(f"{model.name}: expected one input tensor, got {len(request.tensors)}")
        tensor = request.tensor(model.input_name)
        if tensor.datatype not in model.input_datatypes:
            raise InvalidInput(
                f"{model.name}: input {model.input_name!r} must be {' or '.join(model.input_datatypes)}, "
                f"got {tensor.datatype}"
            )
        shape, expected = tensor.data.shape, model.input_shape
        if tensor.datatype == "BYTES":
            expected = ()
        fits = len(shape) == len(expected) + 1 and all(e in (-1, s) for e, s in zip(expected, shape[1:], strict=True))
        if not fits or shape[0] < 1:
            raise InvalidInput(
                f"{model.name}: input shape {list(shape)} does not match [-1, {', '.join(map(str, expected))}]"
            )
        if shape[0] > limits.max_samples:
            raise PayloadTooLarge(f"{model.name}: {shape[0]} samples in one request; the limit is {limits.max_samples}")
        if tensor.datatype == "BYTES":  # decode here, so a bad image is refused before it joins a batch
            decoded = np.empty(len(tensor.data), dtype=object)
            for i, item in enumerate(tensor.data):  # one by one: equal-shaped arrays would broadcast
                decoded[i] = decode_image(item, limits.images)
            return decoded, "fp32"
        if tensor.datatype == "UINT8":
            height, width = shape[1:]
            if height * width > limits.max_pixels:
                raise PayloadTooLarge(f"{model.name}: images of {width}x{height} exceed {limits.max_pixels} pixels")
            if min(height, width) < limits.min_side:
                raise InvalidInput(
                    f"{model.name}: images of {width}x{height} are too small ({limits.min_side} px a side)"
                )
            if max(height, width) > limits.max_aspect * min(height, width):
                raise InvalidInput(f"{model.name}: images of {width}x{height} are too elongated")
            return tensor.data, "fp32"
        codec = {"FP32": "fp32", "FP16": "fp16", "INT8": "int8"}[tensor.datatype]
        return decode_feature(tensor), codec

    async def infer(self, name: str, request: Message, prepared: tuple[np.ndarray, str] | None = None) -> Message:
        model = self.model(name)
        x, codec = prepared if prepared is not None else self.validate(model, request)
        if model.output_name == "feature":
            codec = request.parameters.get("codec", codec)
            if not isinstance(codec, str) or codec not in CODECS:
                raise InvalidInput(f"unknown codec {str(codec)[:40]!r}; expected one of {CODECS}")
        result = await model.batcher.submit(x)
        output = np.asarray(result.output, dtype=np.float32)
        if not np.isfinite(output).all():  # extreme input values overflowed: the input's fault, not the server's
            raise InvalidInput(f"{model.name}: the input drove the model to non-finite values")
        if model.output_name == "feature":
            output = encode_feature("feature", output, codec)
        else:
            output = TensorData(model.output_name, output)
        return Message(
            [output],
            parameters={"compute_ms": round(result.compute_ms, 3), "batch_size": result.batch_size},
            id=request.id,
            model_name=name,
        )
