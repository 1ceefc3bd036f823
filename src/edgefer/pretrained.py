"""The pretrained models shipped inside the package (no downloads, work offline).

``default`` is the edge model; ``default-large`` is the cloud's larger model, where this installation
has one. Both are ordinary checkpoints: :func:`edgefer.loading.load_model` takes their names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .loading import NAMED, load_checkpoint, resolve

__all__ = ["DEFAULT_CHECKPOINT", "DEFAULT_LARGE_CHECKPOINT", "load_pretrained", "resolve_checkpoint"]

DEFAULT_CHECKPOINT = NAMED["default"]
DEFAULT_LARGE_CHECKPOINT = NAMED["default-large"]


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """``"default"`` and ``"default-large"`` are the shipped models; anything else is a folder."""
    return resolve(checkpoint)


def load_pretrained(checkpoint: str | Path = "default") -> tuple[nn.Module, dict[str, Any]]:
    """A shipped (or any checkpoint's) PyTorch model, in eval mode, and its metadata dict."""
    return load_checkpoint(resolve(checkpoint))
