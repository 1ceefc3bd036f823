"""Checkpoints: ``model.safetensors`` (weights) + ``model.json`` (everything to rebuild and use it).

``model.json`` holds the model name and build overrides, class names, preprocessing (input size,
normalisation), the training data and recipe, and metrics. Resuming needs more (optimizer, schedule,
random state): that goes to ``train_state.pt`` beside them and is never needed for inference.

An ensemble (:class:`edgefer.models.ensemble.Ensemble`) is a checkpoint too: its build arguments
list each member's, and its weights hold every member's under ``members.<i>.``.

A shipped model may store its weights smaller than it runs them (``weights_dtype`` in
``model.json``): ``float16``; ``int8``, where every convolution and linear weight is quantised
symmetrically per output channel (255 levels between -max|w| and max|w| of the channel; the scales
are stored beside it as ``<name>:scale``) and the other floating-point tensors are float16; or
``int4``, the same with 15 levels, two weights a byte (the weight flattened per output channel, each
level + 8 in a nibble, the first in the low one). Whatever the storage, the model is built and run
in float32: loading casts or dequantises the weights back.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.transforms import Preprocess
from ..models import build
from ..models.ensemble import Ensemble

__all__ = [
    "CheckpointError",
    "build_model",
    "checkpoint_digest",
    "load_checkpoint",
    "make_ensemble",
    "round_as_stored",
    "save_checkpoint",
    "save_train_state",
    "sole_member",
    "update_meta",
]

WEIGHTS, META = "model.safetensors", "model.json"
SCALE = ":scale"  # suffix of an INT8 weight's per-channel scales (a module name cannot contain ':')


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete or does not match its metadata."""


def build_model(build_args: dict[str, Any]) -> nn.Module:
    """A freshly initialised model from saved build arguments (a registered model or an ensemble)."""
    args = dict(build_args)
    name = args.pop("name")
    if name == "ensemble":
        members = [build_model(m) for m in args["members"]]
        return make_ensemble(members, args["sizes"], mirror=args.get("mirror", False), shift=args.get("shift"))
    return build(name, **args)


def make_ensemble(
    members: list[nn.Module], sizes: list[int], *, mirror: bool = False, shift: list[float] | None = None
) -> Ensemble:
    """An :class:`Ensemble` that remembers how to rebuild itself (``build_args``), so it saves as a checkpoint."""
    ensemble = Ensemble(members, sizes=sizes, mirror=mirror, shift=shift)
    ensemble.build_args = {
        "name": "ensemble",
        "num_classes": members[0].build_args["num_classes"],
        "members": [m.build_args for m in members],
        "sizes": [int(s) for s in sizes],
        "mirror": bool(mirror),
    }
    if shift is not None:
        ensemble.build_args["shift"] = [float(v) for v in shift]
    return ensemble


def sole_member(model: nn.Module) -> nn.Module:
    """The network inside a one-member ensemble, such as ``default-large`` (one network stored mirrored: the
    mirror is test-time augmentation, not weights); any other model as it is, a logit-adjusted ensemble too
    (its ``shift`` is part of what it computes)."""
    if isinstance(model, Ensemble) and len(model.members) == 1 and model.shift is None:
        return model.members[0]
    return model


LEVELS = {torch.int8: 127, torch.int4: 7}  # symmetric levels either side of 0 (255 or 15 in all)


def _stored(state: dict[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The tensors to write for ``dtype`` (None: as they are)."""
    if dtype is None:
        return state
    if dtype not in LEVELS:
        return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    top = LEVELS[dtype]
    stored = {}
    for key, value in state.items():
        if not value.is_floating_point():
            stored[key] = value
        elif value.dim() < 2:  # biases, BatchNorm: few numbers, kept at float16
            stored[key] = value.to(torch.float16)
        else:
            w = value.float().reshape(len(value), -1)
            scale = w.abs().amax(dim=1).clamp(min=1e-12) / top
            levels = torch.round(w / scale[:, None]).clamp(-top, top).to(torch.int8)
            stored[key] = levels.reshape(value.shape) if dtype == torch.int8 else _nibbles(levels)
            stored[key + SCALE] = scale
    return stored


def _nibbles(levels: torch.Tensor) -> torch.Tensor:
    """(out, n) levels in [-7, 7] -> (out, ceil(n / 2)) uint8, two a byte."""
    codes = (levels + 8).to(torch.uint8)
    if codes.shape[1] % 2:
        codes = torch.nn.functional.pad(codes, (0, 1))
    return codes[:, 0::2] | (codes[:, 1::2] << 4)


def _unnibbled(packed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """What :func:`_nibbles` packed, as int8 levels of ``shape``."""
    codes = torch.stack([packed & 15, packed >> 4], dim=2).reshape(len(packed), -1)
    return (codes[:, : shape[1:].numel()].to(torch.int8) - 8).reshape(shape)


def _restored(
    state: dict[str, torch.Tensor], weights_dtype: str | None, shapes: dict[str, torch.Size]
) -> dict[str, torch.Tensor]:
    """What :func:`_stored` wrote, as float32 tensors for ``load_state_dict`` (which casts float16 itself);
    ``shapes`` are the model's (INT4 weights are stored flat)."""
    if weights_dtype not in ("int8", "int4"):
        return state
    stored_as = torch.int8 if weights_dtype == "int8" else torch.uint8
    restored = {}
    for key, value in state.items():
        if key.endswith(SCALE):
            if key.removesuffix(SCALE) not in state:
                raise ValueError(f"{key}: scales without their weights")
            continue
        scale, shape = state.get(key + SCALE), shapes.get(key)
        if scale is None or shape is None:  # not quantised, or not the model's (load_state_dict says so)
            if scale is None and value.dtype == stored_as:
                raise ValueError(f"{key}: {weights_dtype.upper()} weights without their scales")
            restored[key] = value
            continue
        rows = (shape[0], (shape[1:].numel() + 1) // 2) if weights_dtype == "int4" else shape
        if value.dtype != stored_as or value.shape != rows or scale.shape != shape[:1]:
            raise ValueError(f"{key}: expected {weights_dtype.upper()} weights with one scale per output channel")
        levels = value if weights_dtype == "int8" else _unnibbled(value, shape)
        restored[key] = levels.float() * scale.float().view(-1, *[1] * (len(shape) - 1))
    return restored


def round_as_stored(model: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """Round ``model``'s weights in place as :func:`save_checkpoint` would store them at ``dtype``,
    so that a score taken now is the stored model's."""
    state = model.state_dict()
    shapes = {k: v.shape for k, v in state.items()}
    model.load_state_dict(_restored(_stored(state, dtype), str(dtype).removeprefix("torch."), shapes))
    return model


def save_checkpoint(
    folder: str | Path, model: nn.Module, meta: dict[str, Any], *, dtype: torch.dtype | None = None
) -> Path:
    """Write weights and metadata atomically enough (write, then rename) that a crash never half-writes.

    ``dtype`` (``torch.float16``, ``torch.int8`` or ``torch.int4``) stores the weights smaller, for a
    shipped model: float16 halves the file, int8 quarters its convolutions and linear layers, int4
    takes an eighth (see the module's docstring). :func:`load_checkpoint` builds the model in float32
    as always and restores them. Integer buffers keep their type.
    """
    if dtype not in (None, torch.float32, torch.float16, torch.int8, torch.int4):
        raise ValueError(f"weights are stored as float32, float16, int8 or int4, not {dtype}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "build": model.build_args}
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        meta["weights_dtype"] = str(dtype).removeprefix("torch.")
    save_file(_stored(state, dtype), folder / f"{WEIGHTS}.tmp")
    (folder / f"{META}.tmp").write_text(json.dumps(meta, indent=2))
    (folder / f"{WEIGHTS}.tmp").replace(folder / WEIGHTS)
    (folder / f"{META}.tmp").replace(folder / META)
    return folder


def checkpoint_digest(folder: str | Path) -> str:
    """A short hash of a checkpoint's weights and metadata: the key of anything derived from it (exports, scores)."""
    folder = Path(folder)
    return hashlib.sha256((folder / WEIGHTS).read_bytes() + (folder / META).read_bytes()).hexdigest()[:16]


def load_checkpoint(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The model (eval mode) and its metadata; clear errors for a missing, corrupt or mismatched folder."""
    folder = Path(folder)
    if not (folder / META).is_file() or not (folder / WEIGHTS).is_file():
        raise CheckpointError(f"{folder}: not a checkpoint (expected {WEIGHTS} and {META})")
    try:
        meta = json.loads((folder / META).read_text())
        build_args = dict(meta["build"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{folder / META}: unreadable metadata ({exc})") from None
    try:
        model = build_model(build_args)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder / META}: cannot build {build_args.get('name')!r} ({exc})") from None
    try:
        state = load_file(folder / WEIGHTS)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{folder / WEIGHTS}: unreadable weights ({exc})") from None
    try:
        shapes = {k: v.shape for k, v in model.state_dict().items()}
        model.load_state_dict(_restored(state, meta.get("weights_dtype"), shapes))
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{folder}: weights do not match {meta['build']}: {exc}") from None
    return model.eval(), meta


def update_meta(folder: str | Path, **fields: Any) -> Path:
    """Add or replace top-level fields of a checkpoint's ``model.json`` (written atomically)."""
    path = Path(folder) / META
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable metadata ({exc})") from None
    path.with_suffix(".tmp").write_text(json.dumps({**meta, **fields}, indent=2))
    path.with_suffix(".tmp").replace(path)
    return path


def preprocess_of(meta: dict[str, Any]) -> Preprocess:
    return Preprocess(**meta["preprocess"])


def save_train_state(folder: str | Path, state: dict[str, Any]) -> None:
    path = Path(folder) / "train_state.pt"
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
