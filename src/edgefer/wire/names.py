"""The names of the models a cloud server offers, derived in one place for the server and the device.

* ``full``: grayscale faces in, logits out (the ``cloud`` strategy); ``full-large`` is the same for
  the larger cloud model, where the server has one.
* ``split-<stage>``: the paper's split: the map after ``<stage>`` in, the attended map out.
* ``suffix-<stage>``: the map after ``<stage>`` in, logits out (a split where the cloud finishes).
"""

from __future__ import annotations

__all__ = ["FULL", "FULL_LARGE", "parse_model_name", "split_model", "suffix_model"]

FULL = "full"
FULL_LARGE = "full-large"


def split_model(after: str) -> str:
    return f"split-{after}"


def suffix_model(after: str) -> str:
    return f"suffix-{after}"


def parse_model_name(name: str) -> tuple[str, str | None]:
    """``("full", None)``, ``("full-large", None)``, ``("split", stage)`` or ``("suffix", stage)``."""
    if name in (FULL, FULL_LARGE):
        return name, None
    kind, sep, stage = name.partition("-")
    if sep and stage and kind in ("split", "suffix"):
        return kind, stage
    raise ValueError(f"not a model name: {name!r} (full, full-large, split-<stage> or suffix-<stage>)")
