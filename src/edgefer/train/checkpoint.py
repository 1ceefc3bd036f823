"""Checkpoints: ``model.safetensors`` (weights) + ``model.json`` (everything to rebuild and use it).

``model.json`` holds the model name and build overrides, class names, preprocessing (input size,
normalisation), the training data and recipe, and metrics. Resuming needs more (optimizer, schedule,
random state): that goes to ``train_state.pt`` beside them and is never needed for inference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..data.transforms import Preprocess
from ..models import FERNet, build

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint"]

WEIGHTS, META = "model.safetensors", "model.json"


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete or does not match its metadata."""


def save_checkpoint(folder: str | Path, model: FERNet, meta: dict[str, Any]) -> Path:
    """Write weights and metadata atomically enough (write, then rename) that a crash never half-writes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "build": model.build_args}
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / f"{WEIGHTS}.tmp")
    (folder / f"{META}.tmp").write_text(json.dumps(meta, indent=2))
    (folder / f"{WEIGHTS}.tmp").replace(folder / WEIGHTS)
    (folder / f"{META}.tmp").replace(folder / META)
    return folder


def load_checkpoint(folder: str | Path) -> tuple[FERNet, dict[str, Any]]:
    """The model (eval mode) and its metadata; clear errors for a missing, corrupt or mismatched folder."""
    folder = Path(folder)
    if not (folder / META).is_file() or not (folder / WEIGHTS).is_file():
        raise CheckpointError(f"{folder}: not a checkpoint (expected {WEIGHTS} and {META})")
    try:
        meta = json.loads((folder / META).read_text())
        build_args = dict(meta["build"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{folder / META}: unreadable metadata ({exc})") from None
    model = build(build_args.pop("name"), **build_args)
    try:
        state = load_file(folder / WEIGHTS)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{folder / WEIGHTS}: unreadable weights ({exc})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{folder}: weights do not match {meta['build']}: {exc}") from None
    return model.eval(), meta


def preprocess_of(meta: dict[str, Any]) -> Preprocess:
    return Preprocess(**meta["preprocess"])


def save_train_state(folder: str | Path, state: dict[str, Any]) -> None:
    path = Path(folder) / "train_state.pt"
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
