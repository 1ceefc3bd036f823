"""One way to load a model for inference, whatever runs it: :func:`load_model`.

``load_model("default")``, ``load_model("default-large")``, ``load_model("runs/x/last")`` (a
training checkpoint) or ``load_model("exports/int8")`` (an ``edgefer export`` folder) all return a
:class:`LoadedModel` with the same interface: ``model(x)`` (logits for a prepared batch),
``stage_names``, ``split_points``, ``split(after, until)``, ``run(x, first, last)``, and its typed
:class:`ModelMeta`. This module is the only place that asks whether a folder is a checkpoint or an
export, and which runtime runs it.

``runtime``: ``auto`` (what the folder holds: PyTorch for a checkpoint, the export's own runtime
for an export), ``torch``, ``onnxruntime`` or ``openvino``. Asking a checkpoint for ONNX Runtime or
OpenVINO exports it (FP32, checked against PyTorch as ``edgefer export`` does) into a cache folder
beside the user's other caches, once; later loads reuse it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.transforms import Preprocess
from .checkpoint import META, CheckpointError, checkpoint_digest, load_checkpoint
from .exported import RUNTIMES, SIDECAR, ExportedNet, ExportError, read_export

__all__ = ["NAMED", "RUNTIME_CHOICES", "LoadedModel", "ModelMeta", "load_model", "read_meta", "resolve", "wrap_model"]

RUNTIME_CHOICES = ("auto", "torch", *RUNTIMES)
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
NAMED = {"default": WEIGHTS_DIR / "default", "default-large": WEIGHTS_DIR / "default-large"}


def resolve(source: str | Path) -> Path:
    """``default`` (the shipped edge model), ``default-large`` (the shipped cloud model) or a folder."""
    if str(source) in NAMED:
        folder = NAMED[str(source)]
        if not (folder / META).is_file():
            raise CheckpointError(
                f"this installation has no {source!r} model ({folder} is empty); "
                "pass --checkpoint with a folder written by `edgefer train`"
            )
        return folder
    return Path(source)


@dataclass(frozen=True)
class ModelMeta:
    """What a model needs around it: its classes, how to prepare a face, how it was built, where it can be cut."""

    classes: tuple[str, ...]
    preprocess: Preprocess
    build: dict[str, Any]  # the registered name and overrides (``{"name": "ensemble", ...}`` for an ensemble)
    runtime: str  # torch | onnxruntime | openvino
    source: str  # the folder it came from
    stage_names: tuple[str, ...] = ()
    split_points: tuple[str, ...] = ()  # stages after which this model can be cut on this runtime
    recipe: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # everything else in the metadata file

    @property
    def name(self) -> str:
        return str(self.build.get("name", "?"))

    @property
    def tta(self) -> str:
        """The test-time augmentation the model was trained to be scored with."""
        if "tta" in self.recipe:
            return str(self.recipe["tta"])
        return "flip" if self.recipe.get("tta_flip") else "none"

    def as_dict(self) -> dict[str, Any]:
        """The metadata as saved with a checkpoint (``model.json``)."""
        return {
            **self.extra,
            "classes": list(self.classes),
            "preprocess": self.preprocess.as_dict(),
            "build": self.build,
            "recipe": self.recipe,
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, runtime: str, source: str | Path, **kwargs: Any) -> ModelMeta:
        known = {"classes", "preprocess", "build", "recipe", "metrics"}
        try:
            return cls(
                classes=tuple(raw["classes"]),
                preprocess=Preprocess(**raw["preprocess"]),
                build=dict(raw["build"]),
                runtime=runtime,
                source=str(source),
                recipe=dict(raw.get("recipe") or {}),
                metrics=dict(raw.get("metrics") or {}),
                extra={k: v for k, v in raw.items() if k not in known},
                **kwargs,
            )
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{source}: incomplete model metadata ({exc!r})") from None


class LoadedModel:
    """A classifier ready for inference: a PyTorch module, or an export run by ONNX Runtime / OpenVINO.

    ``model(x)`` maps a prepared batch (N, 3, S, S) to logits. ``split(after, until)`` cuts it into
    (head, cloud part, tail) callables, at any stage for PyTorch and at the export's split point for
    an export. ``run(x, first, last)`` runs the stages ``first`` .. ``last`` (PyTorch only).
    """

    def __init__(self, module: nn.Module, *, meta: ModelMeta, parts: dict[str, nn.Module] | None = None) -> None:
        self.module = module.eval()
        self.meta = meta
        self._parts = parts or {}

    @property
    def runtime(self) -> str:
        return self.meta.runtime

    @property
    def classes(self) -> list[str]:
        return list(self.meta.classes)

    @property
    def preprocess(self) -> Preprocess:
        return self.meta.preprocess

    @property
    def stage_names(self) -> list[str]:
        return list(self.meta.stage_names)

    @property
    def stagewise(self) -> bool:
        """Whether single stages can run (``stage``, ``run``, any split): a PyTorch FERNet."""
        return self.runtime == "torch" and hasattr(self.module, "stage")

    @property
    def net(self) -> nn.Module:
        """The PyTorch module (a FERNet or an Ensemble); for an export, the chained parts."""
        return self.module

    def __call__(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.module(x)

    def split(self, after: str = "stage2", until: str | None = None) -> tuple[nn.Module, nn.Module, nn.Module]:
        if after not in self.meta.split_points:
            raise ValueError(
                f"{self.meta.source} ({self.runtime}) cannot be split after {after!r}; "
                f"its split points are {list(self.meta.split_points) or 'none'}"
                + ("" if self.runtime == "torch" else " (export it with --split after=STAGE for others)")
            )
        if self.runtime == "torch":
            return self.module.split(after=after, until=until)
        if until is not None:
            raise ValueError(f"an export is split once, after {after!r}; `until` needs the PyTorch checkpoint")
        return tuple(self._parts[k] for k in ("edge_head", "cloud", "edge_tail"))

    def stage(self, name: str) -> nn.Module:
        if not self.stagewise:
            raise ValueError(f"single stages need a PyTorch FERNet; {self.meta.source} is {self.runtime}")
        return self.module.stage(name)

    def run(self, x: Tensor, first: int, last: int) -> Tensor:
        """Stages ``first`` .. ``last`` (indices into ``stage_names``, inclusive)."""
        for name in self.stage_names[first : last + 1]:
            x = self.stage(name)(x)
        return x


def wrap_model(module: nn.Module, meta: dict[str, Any], *, source: str | Path = "<in memory>") -> LoadedModel:
    """A PyTorch module already in memory, with its metadata (``classes``, ``preprocess``, ...)."""
    stages = tuple(getattr(module, "stage_names", ()))
    raw = {"build": getattr(module, "build_args", {"name": type(module).__name__}), **meta}
    meta_obj = ModelMeta.from_dict(raw, runtime="torch", source=source, stage_names=stages, split_points=stages[:-1])
    return LoadedModel(module, meta=meta_obj)


def _torch_model(folder: Path) -> LoadedModel:
    module, raw = load_checkpoint(folder)
    return wrap_model(module, raw, source=folder)


def _exported_model(folder: Path, runtime: str | None, threads: int | None) -> LoadedModel:
    runners, raw = read_export(folder, runtime, threads)
    runtime = runtime or ("openvino" if raw.get("format") == "openvino" else "onnxruntime")
    split_after = raw.get("split_after")
    stages = raw.get("stages")
    if stages is None:  # exports written before the sidecar listed its stages
        from .checkpoint import build_model

        stages = getattr(build_model(raw["build"]), "stage_names", ())
    meta = ModelMeta.from_dict(
        raw,
        runtime=runtime,
        source=folder,
        stage_names=tuple(stages),
        split_points=(split_after,) if split_after else (),
    )
    parts = {name: ExportedNet({name: run}) for name, run in runners.items()}
    return LoadedModel(ExportedNet(runners), meta=meta, parts=parts)


def _export_cache() -> Path:
    base = os.environ.get("EDGEFER_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgefer" / "exports"


def _exported_checkpoint(folder: Path, runtime: str, threads: int | None) -> LoadedModel:
    """A checkpoint exported (FP32, checked) for ``runtime`` once, into the cache, then loaded from there."""
    digest = checkpoint_digest(folder)
    fmt = "openvino" if runtime == "openvino" else "onnx"
    target = _export_cache() / f"{digest}-{fmt}"
    if not (target / SIDECAR).is_file():
        from ..export import export_model

        module, raw = load_checkpoint(folder)
        split = "stage2" if "stage2" in getattr(module, "stage_names", ()) else None
        export_model(module, raw, target, fmt=fmt, precision="fp32", split_after=split)
    return _exported_model(target, runtime, threads)


def load_model(source: str | Path = "default", runtime: str = "auto", threads: int | None = None) -> LoadedModel:
    """The model in ``source`` (``default``, ``default-large``, a checkpoint or an export folder), ready
    to run on ``runtime`` (``auto``, ``torch``, ``onnxruntime``, ``openvino``); ``threads`` for the
    ONNX Runtime / OpenVINO session."""
    if runtime not in RUNTIME_CHOICES:
        raise ValueError(f"unknown runtime {runtime!r}; expected auto, torch, onnxruntime or openvino")
    folder = resolve(source)
    if (folder / SIDECAR).is_file():
        if runtime == "torch":
            raise ExportError(f"{folder} is an export; run it with runtime onnxruntime or openvino (or auto)")
        return _exported_model(folder, None if runtime == "auto" else runtime, threads)
    if not (folder / META).is_file():
        what = "no such folder" if not folder.exists() else f"neither a checkpoint ({META}) nor an export ({SIDECAR})"
        raise CheckpointError(f"{folder}: {what}")
    if runtime in ("auto", "torch"):
        return _torch_model(folder)
    return _exported_checkpoint(folder, runtime, threads)


def read_meta(source: str | Path) -> dict[str, Any]:
    """The raw metadata of a checkpoint or export folder, without loading any weights."""
    folder = resolve(source)
    path = folder / (SIDECAR if (folder / SIDECAR).is_file() else META)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from None
