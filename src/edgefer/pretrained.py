"""The pretrained default model shipped inside the package (no downloads, works offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .models import FERNet
from .train.checkpoint import CheckpointError, load_checkpoint

__all__ = ["DEFAULT_CHECKPOINT", "load_pretrained", "resolve_checkpoint"]

DEFAULT_CHECKPOINT = Path(__file__).parent / "weights" / "default"


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """``"default"`` is the shipped model; anything else is a checkpoint folder."""
    if str(checkpoint) == "default":
        if not (DEFAULT_CHECKPOINT / "model.json").is_file():
            raise CheckpointError(
                f"this installation has no pretrained default model ({DEFAULT_CHECKPOINT} is empty); "
                "pass --checkpoint with a folder written by `edgefer train`"
            )
        return DEFAULT_CHECKPOINT
    return Path(checkpoint)


def load_pretrained(checkpoint: str | Path = "default") -> tuple[FERNet, dict[str, Any]]:
    """The shipped default model (eval mode) and its metadata: classes, preprocessing, metrics."""
    return load_checkpoint(resolve_checkpoint(checkpoint))
