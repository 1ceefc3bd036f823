"""edgefer: facial expression recognition on edge devices, with optional help from a cloud server.

``edgefer.analyze(photos)`` and ``edgefer.analyze_video(path)`` return a pandas DataFrame of every
face's expression (see :mod:`edgefer.analysis`); ``edgefer.load_pretrained()`` the shipped model and
its metadata (:mod:`edgefer.pretrained`). They are imported on first use, so ``import edgefer``
stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["analyze", "analyze_video", "load_pretrained"]


def __getattr__(name: str) -> Any:
    if name == "load_pretrained":
        from .pretrained import load_pretrained

        return load_pretrained
    if name in ("analyze", "analyze_video"):
        from . import analysis as module

        return getattr(module, name)
    raise AttributeError(f"module 'edgefer' has no attribute {name!r}")
