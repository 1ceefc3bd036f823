"""edgefer: facial expression recognition on edge devices, with optional help from a cloud server.

``edgefer.load_pretrained()`` returns the shipped default model and its metadata (see
:mod:`edgefer.pretrained`); it is imported on first use, so ``import edgefer`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_pretrained"]


def __getattr__(name: str) -> Any:
    if name == "load_pretrained":
        from .pretrained import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'edgefer' has no attribute {name!r}")
